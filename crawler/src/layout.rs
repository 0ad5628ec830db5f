//! From a listing to tables: which folders are tables, which are partitions, and the
//! partition keys their names give.
//!
//! ```text
//!   s3://lake/logs/               crawl location (level 2: bucket = 1)
//!   ├── events/                   table "events" (default table level = location + 1)
//!   │   ├── year=2026/month=11/   named partition levels: year, month
//!   │   └── ...
//!   └── clicks/                   table "clicks"
//!       └── 2026/11/01/           unnamed levels: partition_0, partition_1, partition_2
//! ```
//! The location itself is one table when it holds data files or partition-like folders
//! (`k=v`, or names of digits such as `2026` or `2026-11-01`).

use std::collections::BTreeMap;

use datafusion::object_store::ObjectMeta;
use quarry_metastore::{Column, HiveType};

/// Hive's name for the partition of NULL values.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A data file: its folders relative to the crawl location, then its name.
#[derive(Debug, Clone)]
pub struct Listed {
    pub segments: Vec<String>,
    pub meta: ObjectMeta,
}

impl Listed {
    /// The folders between the location and the file.
    pub fn folders(&self) -> &[String] {
        &self.segments[..self.segments.len() - 1]
    }
}

/// The files of one table root, grouped by partition folder.
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// Folders from the crawl location to the table root.
    pub root: Vec<String>,
    /// Partition folders below the root (all of the same depth) and their files.
    pub folders: BTreeMap<Vec<String>, Vec<ObjectMeta>>,
    /// How many partition levels the table has.
    pub depth: usize,
}

/// A folder name that reads as a partition: `k=v`, or digits such as `2026` or `2026-11-01`.
pub fn partition_like(name: &str) -> bool {
    name.contains('=')
        || (name.bytes().any(|b| b.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'_'))
}

/// The relative depth of table roots when no table level is given.
pub fn default_table_depth(files: &[Listed]) -> usize {
    let location_is_table = files
        .iter()
        .any(|f| f.segments.len() == 1 || partition_like(&f.segments[0]));
    if location_is_table { 0 } else { 1 }
}

/// Groups files into table roots at `depth` below the location; files above that depth and
/// files at another partition depth than most of their table's are returned in `skipped`
/// with the reason.
pub fn group_tables(files: Vec<Listed>, depth: usize) -> (Vec<TableFiles>, Vec<(String, String)>) {
    let mut skipped = Vec::new();
    let mut roots: BTreeMap<Vec<String>, Vec<Listed>> = BTreeMap::new();
    for file in files {
        if file.segments.len() <= depth {
            skipped.push((
                file.meta.location.to_string(),
                "it lies above the table level".to_string(),
            ));
            continue;
        }
        roots
            .entry(file.segments[..depth].to_vec())
            .or_default()
            .push(file);
    }
    let mut tables = Vec::new();
    for (root, files) in roots {
        let mut by_depth: BTreeMap<usize, usize> = BTreeMap::new();
        for f in &files {
            *by_depth.entry(f.folders().len() - depth).or_default() += 1;
        }
        // Most files decide; on a tie the shallower layout wins.
        let table_depth = by_depth
            .iter()
            .max_by_key(|(d, n)| (**n, std::cmp::Reverse(**d)))
            .map(|(d, _)| *d)
            .unwrap_or(0);
        let mut folders: BTreeMap<Vec<String>, Vec<ObjectMeta>> = BTreeMap::new();
        for f in files {
            let partition = f.folders()[depth..].to_vec();
            if partition.len() != table_depth {
                skipped.push((
                    f.meta.location.to_string(),
                    format!(
                        "it is {} folder(s) below its table root, where the table's files are {table_depth}",
                        partition.len()
                    ),
                ));
                continue;
            }
            folders.entry(partition).or_default().push(f.meta);
        }
        tables.push(TableFiles {
            root,
            folders,
            depth: table_depth,
        });
    }
    (tables, skipped)
}

/// One partition level of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub name: String,
    /// Folder names are `name=value`.
    pub named: bool,
}

/// The partition keys that the folder names of a table give. Unnamed levels take their
/// names from `partition_names` in order, else `partition_<level>`.
pub fn partition_levels<'a>(
    folders: impl Iterator<Item = &'a Vec<String>> + Clone,
    depth: usize,
    partition_names: &[String],
    notes: &mut Vec<String>,
) -> Vec<Level> {
    let mut unnamed = 0;
    (0..depth)
        .map(|i| {
            let mut keys: Vec<String> = folders
                .clone()
                .map(|f| match f[i].split_once('=') {
                    Some((k, _)) => crate::names::column_name(k),
                    None => String::new(),
                })
                .collect();
            keys.sort();
            keys.dedup();
            match keys.as_slice() {
                [key] if !key.is_empty() => Level {
                    name: key.clone(),
                    named: true,
                },
                _ => {
                    if keys.len() > 1 {
                        notes.push(format!(
                            "partition level {i} mixes folder names ({}): its values are the whole folder names",
                            keys.iter()
                                .map(|k| if k.is_empty() { "unnamed" } else { k.as_str() })
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    let name = partition_names
                        .get(unnamed)
                        .cloned()
                        .unwrap_or_else(|| format!("partition_{i}"));
                    unnamed += 1;
                    Level { name, named: false }
                }
            }
        })
        .collect()
}

/// Partition values of a folder path: the part after `=` of named levels (Hive's `%XX`
/// escapes undone), the whole folder name of unnamed ones.
pub fn partition_values(levels: &[Level], folder: &[String]) -> Vec<String> {
    levels
        .iter()
        .zip(folder)
        .map(|(level, name)| match (level.named, name.split_once('=')) {
            (true, Some((_, value))) => unescape(value),
            _ => name.clone(),
        })
        .collect()
}

fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len() + 1
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// The type of a named partition key: `bigint` when every value is an integer without
/// leading zeros, `date` when every value is `YYYY-MM-DD`, otherwise (and always for
/// unnamed levels) `string`, so that `01` stays `01`.
pub fn partition_key_type(level: &Level, values: &[&str]) -> HiveType {
    let values: Vec<&str> = values
        .iter()
        .copied()
        .filter(|v| *v != HIVE_DEFAULT_PARTITION)
        .collect();
    if !level.named || values.is_empty() {
        return HiveType::String;
    }
    if values.iter().all(|v| is_plain_integer(v)) {
        return HiveType::BigInt;
    }
    if values
        .iter()
        .all(|v| v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok())
    {
        return HiveType::Date;
    }
    HiveType::String
}

/// Whether `value` can be a partition value of a key of type `hive`.
pub fn value_fits(hive: &HiveType, value: &str) -> bool {
    value == HIVE_DEFAULT_PARTITION
        || match hive {
            HiveType::BigInt | HiveType::Int | HiveType::SmallInt | HiveType::TinyInt => {
                is_plain_integer(value)
            }
            HiveType::Date => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
            _ => true,
        }
}

fn is_plain_integer(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// The partition keys of `levels` typed from their values.
pub fn typed_keys(levels: &[Level], values: &[Vec<String>]) -> Vec<Column> {
    levels
        .iter()
        .enumerate()
        .map(|(i, level)| {
            let column: Vec<&str> = values.iter().map(|v| v[i].as_str()).collect();
            Column::new(&level.name, partition_key_type(level, &column))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::path::Path;

    fn listed(key: &str) -> Listed {
        Listed {
            segments: key.split('/').map(String::from).collect(),
            meta: ObjectMeta {
                location: Path::from(key),
                last_modified: chrono::Utc::now(),
                size: 10,
                e_tag: None,
                version: None,
            },
        }
    }

    #[test]
    fn child_folders_are_tables_unless_the_location_holds_partitions() {
        let files = vec![
            listed("events/year=2026/a.json"),
            listed("clicks/2026/11/01/b.csv"),
        ];
        assert_eq!(default_table_depth(&files), 1);
        let (tables, skipped) = group_tables(files, 1);
        assert!(skipped.is_empty());
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].root, vec!["clicks"]);
        assert_eq!(tables[0].depth, 3);
        assert_eq!(tables[1].depth, 1);

        let files = vec![listed("dt=2026-11-01/a.parquet")];
        assert_eq!(default_table_depth(&files), 0);
        let files = vec![listed("2026/11/a.parquet"), listed("2026/12/b.parquet")];
        assert_eq!(default_table_depth(&files), 0);
    }

    #[test]
    fn partition_keys_are_named_and_typed_as_glue_users_expect() {
        let folders = [
            vec!["year=2026".to_string(), "11".to_string(), "01".to_string()],
            vec!["year=2027".to_string(), "01".to_string(), "02".to_string()],
        ];
        let mut notes = Vec::new();
        let levels = partition_levels(folders.iter(), 3, &["month".into()], &mut notes);
        assert_eq!(
            levels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["year", "month", "partition_2"]
        );
        let values: Vec<Vec<String>> = folders
            .iter()
            .map(|f| partition_values(&levels, f))
            .collect();
        assert_eq!(values[0], ["2026", "11", "01"]);
        let keys = typed_keys(&levels, &values);
        assert_eq!(keys[0].data_type, HiveType::BigInt);
        assert_eq!(keys[1].data_type, HiveType::String);
        let level = Level {
            name: "dt".into(),
            named: true,
        };
        assert_eq!(
            partition_key_type(&level, &["2026-11-01", "2026-11-02"]),
            HiveType::Date
        );
        assert_eq!(partition_key_type(&level, &["07", "8"]), HiveType::String);
        assert_eq!(unescape("eu%2Fwest"), "eu/west");
    }
}
