//! The Hive data model: databases, tables, storage descriptors and partitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::HiveType;

/// A Hive database (the same thing as a schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    /// Where managed tables of this database are written, as a URL or absolute path.
    pub location: String,
    pub description: Option<String>,
    pub properties: BTreeMap<String, String>,
}

impl Database {
    pub fn new(name: impl Into<String>, location: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            location: location.into(),
            description: None,
            properties: BTreeMap::new(),
        }
    }
}

/// A column: name, Hive type and optional comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data_type: HiveType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Column {
    pub fn new(name: impl Into<String>, data_type: HiveType) -> Self {
        Self {
            name: name.into(),
            data_type,
            comment: None,
        }
    }
}

/// Hive's table types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableType {
    /// Files are owned elsewhere: dropping the table keeps them.
    External,
    /// Files live in the warehouse and belong to the table.
    Managed,
    /// A view: a stored query, no storage.
    VirtualView,
}

impl TableType {
    /// Hive's spelling: `EXTERNAL_TABLE`, `MANAGED_TABLE`, `VIRTUAL_VIEW`.
    pub fn as_hive_str(&self) -> &'static str {
        match self {
            TableType::External => "EXTERNAL_TABLE",
            TableType::Managed => "MANAGED_TABLE",
            TableType::VirtualView => "VIRTUAL_VIEW",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "EXTERNAL_TABLE" => TableType::External,
            "MANAGED_TABLE" => TableType::Managed,
            "VIRTUAL_VIEW" => TableType::VirtualView,
            _ => return None,
        })
    }
}

impl TryFrom<&str> for TableType {
    type Error = String;
    fn try_from(value: &str) -> Result<Self, String> {
        TableType::parse(value).ok_or_else(|| format!("unknown table type \"{value}\""))
    }
}

/// File formats a table can be stored as (Hive's `STORED AS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageFormat {
    Parquet,
    /// Delimited text, read with Hive's LazySimpleSerDe rules.
    TextFile,
    /// Newline-delimited JSON.
    Json,
    Avro,
}

impl StorageFormat {
    /// Parses the `STORED AS` keyword (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "PARQUET" => StorageFormat::Parquet,
            "TEXTFILE" | "CSV" => StorageFormat::TextFile,
            "JSON" | "JSONFILE" => StorageFormat::Json,
            "AVRO" => StorageFormat::Avro,
            _ => return None,
        })
    }

    /// The `STORED AS` keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            StorageFormat::Parquet => "PARQUET",
            StorageFormat::TextFile => "TEXTFILE",
            StorageFormat::Json => "JSON",
            StorageFormat::Avro => "AVRO",
        }
    }

    /// Hive's input format class, shown by `DESCRIBE FORMATTED`.
    pub fn input_format(&self) -> &'static str {
        match self {
            StorageFormat::Parquet => {
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
            }
            StorageFormat::TextFile | StorageFormat::Json => {
                "org.apache.hadoop.mapred.TextInputFormat"
            }
            StorageFormat::Avro => "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
        }
    }

    /// Hive's serde class, shown by `DESCRIBE FORMATTED`.
    pub fn serde(&self) -> &'static str {
        match self {
            StorageFormat::Parquet => "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            StorageFormat::TextFile => "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
            StorageFormat::Json => "org.openx.data.jsonserde.JsonSerDe",
            StorageFormat::Avro => "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
        }
    }
}

/// Where and how a table's (or partition's) files are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageDescriptor {
    /// A URL (`s3://bucket/prefix/`, `file:///path/`) or an absolute local path.
    pub location: String,
    pub format: StorageFormat,
    /// Serde properties such as `field.delim` and `serialization.null.format`.
    #[serde(default)]
    pub serde_properties: BTreeMap<String, String>,
}

/// Column statistics computed by `ANALYZE TABLE ... COMPUTE STATISTICS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ColumnStatistics {
    pub null_count: u64,
    pub distinct_count: Option<u64>,
    /// Minimum and maximum in SQL literal text, cast back to the column type when used.
    pub min: Option<String>,
    pub max: Option<String>,
}

/// Table statistics computed by `ANALYZE TABLE ... COMPUTE STATISTICS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TableStatistics {
    pub row_count: u64,
    pub total_bytes: u64,
    pub file_count: u64,
    /// Keyed by column name.
    pub columns: BTreeMap<String, ColumnStatistics>,
    /// RFC 3339 time of the ANALYZE run.
    pub computed_at: String,
}

/// A table or view with everything Hive keeps about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub database: String,
    pub name: String,
    pub table_type: TableType,
    /// Data columns, in order (partition keys are not among them).
    pub columns: Vec<Column>,
    /// Partition keys, in order; their values come from the partition, not the files.
    pub partition_keys: Vec<Column>,
    /// Storage of the table; ignored for views.
    pub storage: StorageDescriptor,
    pub properties: BTreeMap<String, String>,
    /// For views: the query text, with names qualified as they resolve in `database`.
    pub view_sql: Option<String>,
    pub statistics: Option<TableStatistics>,
    /// RFC 3339 timestamps, set by the store.
    pub created_at: String,
    pub updated_at: String,
}

impl Table {
    /// True when the table has partition keys.
    pub fn is_partitioned(&self) -> bool {
        !self.partition_keys.is_empty()
    }

    /// `database.name`.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.database, self.name)
    }
}

/// One partition: values for each partition key, in key order, and where its files are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    pub values: Vec<String>,
    pub location: String,
}

/// Hive's partition name: `k1=v1/k2=v2`, with Hive's escaping of special characters.
pub fn partition_spec(keys: &[Column], values: &[String]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| format!("{}={}", escape_path_name(&k.name), escape_path_name(v)))
        .collect::<Vec<_>>()
        .join("/")
}

/// Escapes the characters Hive escapes in partition path names (`%XX`, upper-case hex).
fn escape_path_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let special = c.is_control()
            || matches!(
                c,
                '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
            );
        if special {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_spec_escapes_like_hive() {
        let keys = vec![
            Column::new("dt", HiveType::Date),
            Column::new("region", HiveType::String),
        ];
        let values = vec!["2026-11-01".to_string(), "eu/west=1".to_string()];
        assert_eq!(
            partition_spec(&keys, &values),
            "dt=2026-11-01/region=eu%2Fwest%3D1"
        );
    }
}
