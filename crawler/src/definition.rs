//! A crawler's definition: where it looks, where it writes, and its options.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;
use crate::{CrawlerError, Result};

/// What a run does with new columns and changed types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SchemaChange {
    /// New columns are added to the table (Glue's `UPDATE_IN_DATABASE`).
    #[default]
    Update,
    /// Changes are only reported in the run log (Glue's `LOG`).
    Log,
}

/// What a run does with partitions and tables whose folders vanished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeleteBehavior {
    /// They are removed from the metastore (Glue's `DELETE_FROM_DATABASE`).
    Delete,
    /// They are only reported (Glue's `LOG`); the metastore keeps them.
    #[default]
    Log,
}

/// The options of `CREATE CRAWLER ... WITH (...)` and `quarry crawl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CrawlerOptions {
    /// A five-field cron expression (UTC), at least five minutes between runs.
    pub schedule: Option<String>,
    /// Glue's table level: the absolute depth of table folders, the bucket (or the first
    /// folder of a local path) being level 1. Default: one below the crawl location.
    pub table_level: Option<usize>,
    pub schema_change: SchemaChange,
    pub delete_behavior: DeleteBehavior,
    /// Put before every table name.
    pub table_prefix: String,
    /// Glob patterns of keys to leave out, relative to the crawl location; a pattern
    /// without `/` is also matched against file and folder names alone (`*.tmp`).
    pub exclude: Vec<String>,
    /// Names of unnamed partition levels, in order (default `partition_0`, ...).
    pub partition_names: Vec<String>,
}

/// The option names, as written in `WITH (...)`.
pub const OPTION_NAMES: &[&str] = &[
    "schedule",
    "table_level",
    "schema_change",
    "delete_behavior",
    "table_prefix",
    "exclude",
    "partition_names",
];

/// A crawler: a location, a target database and options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlerDefinition {
    pub name: String,
    /// A normalized location URL ending in `/` (`s3://bucket/prefix/`, `file:///path/`).
    pub location: String,
    pub database: String,
    #[serde(default)]
    pub options: CrawlerOptions,
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl CrawlerOptions {
    /// Options from `name = 'value'` pairs; unknown names and bad values are errors.
    pub fn from_pairs<'a>(
        crawler: &str,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut options = CrawlerOptions::default();
        for (name, value) in pairs {
            let invalid = |reason: String| CrawlerError::InvalidOption {
                crawler: crawler.to_string(),
                option: name.to_string(),
                reason,
            };
            match name.to_ascii_lowercase().as_str() {
                "schedule" => options.schedule = Some(value.trim().to_string()),
                "table_level" => {
                    let level = value
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|l| *l >= 1)
                        .ok_or_else(|| invalid(format!("expected a level >= 1, got {value:?}")))?;
                    options.table_level = Some(level);
                }
                "schema_change" => {
                    options.schema_change = match value.trim().to_ascii_lowercase().as_str() {
                        "update" => SchemaChange::Update,
                        "log" => SchemaChange::Log,
                        _ => {
                            return Err(invalid(format!(
                                "expected 'update' or 'log', got {value:?}"
                            )));
                        }
                    }
                }
                "delete_behavior" => {
                    options.delete_behavior = match value.trim().to_ascii_lowercase().as_str() {
                        "delete" => DeleteBehavior::Delete,
                        "log" => DeleteBehavior::Log,
                        _ => {
                            return Err(invalid(format!(
                                "expected 'delete' or 'log', got {value:?}"
                            )));
                        }
                    }
                }
                "table_prefix" => options.table_prefix = value.trim().to_ascii_lowercase(),
                "exclude" => options.exclude.extend(split_list(value)),
                "partition_names" => {
                    options.partition_names = split_list(&value.to_ascii_lowercase())
                }
                other => {
                    return Err(CrawlerError::InvalidOption {
                        crawler: crawler.to_string(),
                        option: other.to_string(),
                        reason: format!("unknown option; known: {}", OPTION_NAMES.join(", ")),
                    });
                }
            }
        }
        options.validate(crawler)?;
        Ok(options)
    }

    /// Checks every option, naming the first bad one.
    pub fn validate(&self, crawler: &str) -> Result<()> {
        let invalid = |option: &str, reason: String| CrawlerError::InvalidOption {
            crawler: crawler.to_string(),
            option: option.to_string(),
            reason,
        };
        if let Some(schedule) = &self.schedule {
            Schedule::parse(schedule).map_err(|reason| invalid("schedule", reason))?;
        }
        if !self.table_prefix.is_empty() && !is_identifier(&self.table_prefix) {
            return Err(invalid(
                "table_prefix",
                "use lower-case letters, digits and _".into(),
            ));
        }
        if let Some(name) = self.partition_names.iter().find(|n| !is_identifier(n)) {
            return Err(invalid(
                "partition_names",
                format!("\"{name}\" is not a valid column name"),
            ));
        }
        self.exclude_set()
            .map_err(|reason| invalid("exclude", reason))?;
        Ok(())
    }

    /// The exclude patterns, compiled.
    pub(crate) fn exclude_set(&self) -> std::result::Result<GlobSet, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &self.exclude {
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .or_else(|_| Glob::new(pattern))
                .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
            builder.add(glob);
        }
        builder.build().map_err(|e| e.to_string())
    }

    /// The options that differ from the defaults, as `WITH (...)` would set them.
    pub fn to_pairs(&self) -> BTreeMap<&'static str, String> {
        let mut pairs = BTreeMap::new();
        if let Some(s) = &self.schedule {
            pairs.insert("schedule", s.clone());
        }
        if let Some(l) = self.table_level {
            pairs.insert("table_level", l.to_string());
        }
        pairs.insert(
            "schema_change",
            match self.schema_change {
                SchemaChange::Update => "update",
                SchemaChange::Log => "log",
            }
            .to_string(),
        );
        pairs.insert(
            "delete_behavior",
            match self.delete_behavior {
                DeleteBehavior::Delete => "delete",
                DeleteBehavior::Log => "log",
            }
            .to_string(),
        );
        if !self.table_prefix.is_empty() {
            pairs.insert("table_prefix", self.table_prefix.clone());
        }
        if !self.exclude.is_empty() {
            pairs.insert("exclude", self.exclude.join(","));
        }
        if !self.partition_names.is_empty() {
            pairs.insert("partition_names", self.partition_names.join(","));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_bad_ones_name_the_option() {
        let options = CrawlerOptions::from_pairs(
            "c",
            [
                ("schedule", "0 */6 * * *"),
                ("table_level", "3"),
                ("schema_change", "log"),
                ("delete_behavior", "delete"),
                ("exclude", "*.tmp, tmp/**"),
                ("partition_names", "year,month,day"),
            ],
        )
        .unwrap();
        assert_eq!(options.table_level, Some(3));
        assert_eq!(options.schema_change, SchemaChange::Log);
        assert_eq!(options.delete_behavior, DeleteBehavior::Delete);
        assert_eq!(options.exclude, vec!["*.tmp", "tmp/**"]);
        assert_eq!(options.partition_names, vec!["year", "month", "day"]);

        let err = CrawlerOptions::from_pairs("c", [("schedule", "* * * * *")]).unwrap_err();
        assert!(err.to_string().contains("schedule"), "{err}");
        let err = CrawlerOptions::from_pairs("c", [("colour", "red")]).unwrap_err();
        assert!(err.to_string().contains("unknown option"), "{err}");
        let err = CrawlerOptions::from_pairs("c", [("table_level", "0")]).unwrap_err();
        assert!(err.to_string().contains("table_level"), "{err}");
    }
}
