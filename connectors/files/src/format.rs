//! Turning a table's storage descriptor into a DataFusion `FileFormat`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::avro::AvroFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use quarry_metastore::{StorageFormat, Table};

use crate::{FilesError, Result};

/// Hive's field delimiter when none is given: Ctrl-A.
const HIVE_DEFAULT_DELIMITER: &str = "\u{1}";
/// Hive's NULL marker in text files.
const HIVE_DEFAULT_NULL: &str = "\\N";

/// Serde properties a new TEXTFILE table gets when DDL leaves them out (Hive's defaults).
pub fn serde_defaults(format: StorageFormat) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    if format == StorageFormat::TextFile {
        props.insert("field.delim".into(), HIVE_DEFAULT_DELIMITER.into());
        props.insert("serialization.null.format".into(), HIVE_DEFAULT_NULL.into());
    }
    props
}

/// Number of header lines to skip (`skip.header.line.count`): only 0 and 1 are supported.
pub(crate) fn header_lines(table: &Table) -> Result<bool> {
    match table
        .properties
        .get("skip.header.line.count")
        .map(|s| s.trim())
    {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(FilesError::BadTableProperty {
            table: table.qualified_name(),
            reason: format!("skip.header.line.count = '{other}' is not supported; use 0 or 1"),
        }),
    }
}

/// The DataFusion file format that reads a table's files, configured from its serde and
/// table properties and the session's format options.
pub fn file_format_for(table: &Table, state: &dyn Session) -> Result<Arc<dyn FileFormat>> {
    let options = state.table_options();
    Ok(match table.storage.format {
        StorageFormat::Parquet => {
            Arc::new(ParquetFormat::default().with_options(options.parquet.clone()))
        }
        StorageFormat::TextFile => {
            let props = &table.storage.serde_properties;
            let delimiter = single_byte(table, props, "field.delim", HIVE_DEFAULT_DELIMITER)?;
            let mut format = CsvFormat::default()
                .with_options(options.csv.clone())
                .with_delimiter(delimiter)
                .with_has_header(header_lines(table)?)
                // Hive reads missing trailing fields as NULL: files written before a
                // column was added keep reading.
                .with_truncated_rows(true)
                .with_file_compression_type(compression_of(table));
            if let Some(escape) = props.get("escape.delim") {
                format =
                    format.with_escape(Some(single_byte(table, props, "escape.delim", escape)?));
            }
            if let Some(quote) = props.get("quote.delim") {
                format = format.with_quote(single_byte(table, props, "quote.delim", quote)?);
            }
            Arc::new(format)
        }
        StorageFormat::Json => Arc::new(
            JsonFormat::default()
                .with_options(options.json.clone())
                .with_file_compression_type(compression_of(table)),
        ),
        StorageFormat::Avro => Arc::new(AvroFormat),
    })
}

fn compression_of(table: &Table) -> FileCompressionType {
    match table
        .properties
        .get("compression")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("gzip") => FileCompressionType::GZIP,
        Some("zstd") => FileCompressionType::ZSTD,
        Some("bzip2") => FileCompressionType::BZIP2,
        _ => FileCompressionType::UNCOMPRESSED,
    }
}

fn single_byte(
    table: &Table,
    props: &BTreeMap<String, String>,
    key: &str,
    default: &str,
) -> Result<u8> {
    let value = props.get(key).map(String::as_str).unwrap_or(default);
    let bytes = value.as_bytes();
    match bytes {
        [b] => Ok(*b),
        _ => Err(FilesError::BadTableProperty {
            table: table.qualified_name(),
            reason: format!("{key} must be a single one-byte character, got {value:?}"),
        }),
    }
}
