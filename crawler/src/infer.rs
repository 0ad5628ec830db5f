//! What one file is: its format and its columns.
//!
//! Parquet and Avro schemas come from DataFusion's own inference (footer or header only).
//! Text files are sniffed from their first [`HEAD_BYTES`] (decompressed when gzip or
//! zstd): JSON lines when the first record is an object, else delimited text, whose
//! delimiter, header and column types are inferred here from the sample.

use std::io::Read;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::avro::AvroFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use quarry_files::types::hive_type;
use quarry_metastore::{Column, HiveType, StorageFormat};
use serde::{Deserialize, Serialize};

use crate::names::column_name;

/// How much of a text file is read to infer its format and columns.
pub const HEAD_BYTES: u64 = 256 * 1024;
/// How many records of a text file are looked at.
const SAMPLE_RECORDS: usize = 1000;
/// Field delimiters tried, in order of preference on a tie.
const DELIMITERS: &[u8] = b",\t|;";

/// Compression of a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Everything about a file's format that files of one table must share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatKey {
    pub format: StorageFormat,
    pub compression: Compression,
    /// Field delimiter of delimited text.
    pub delimiter: Option<u8>,
    /// Whether delimited text starts with a header line.
    pub header: bool,
}

impl FormatKey {
    fn plain(format: StorageFormat) -> Self {
        Self {
            format,
            compression: Compression::None,
            delimiter: None,
            header: false,
        }
    }

    /// Glue's `classification` table property.
    pub fn classification(&self) -> &'static str {
        match (self.format, self.delimiter) {
            (StorageFormat::Parquet, _) => "parquet",
            (StorageFormat::Avro, _) => "avro",
            (StorageFormat::Json, _) => "json",
            (StorageFormat::TextFile, Some(b'\t')) => "tsv",
            (StorageFormat::TextFile, _) => "csv",
        }
    }

    /// How the run log names it: `csv (gzip, ',' with header)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.compression != Compression::None {
            parts.push(format!("{:?}", self.compression).to_lowercase());
        }
        if let Some(d) = self.delimiter {
            let header = if self.header {
                "with header"
            } else {
                "no header"
            };
            parts.push(format!("{:?} {header}", d as char));
        }
        if parts.is_empty() {
            self.classification().to_string()
        } else {
            format!("{} ({})", self.classification(), parts.join(", "))
        }
    }
}

/// A file's format and columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSchema {
    pub format: FormatKey,
    pub columns: Vec<Column>,
}

/// Why a file could not be used.
#[derive(Debug)]
pub enum ReadError {
    /// The object store failed (network, server gone): the run cannot go on.
    Store(String),
    /// The file is gone, unreadable for us, corrupt or of no recognizable format: it is
    /// skipped and reported.
    File(String),
}

/// Reads files of one object store.
pub struct Inferrer {
    state: SessionState,
    store: Arc<dyn ObjectStore>,
}

fn store_error(e: datafusion::object_store::Error) -> ReadError {
    use datafusion::object_store::Error as E;
    match e {
        E::NotFound { .. } => ReadError::File("the object vanished while the crawler ran".into()),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            ReadError::File(format!("permission denied: {e}"))
        }
        other => ReadError::Store(other.to_string()),
    }
}

fn datafusion_error(e: DataFusionError) -> ReadError {
    match e.find_root() {
        DataFusionError::ObjectStore(inner) => {
            // Root errors are borrowed; rebuild the classification from the message.
            use datafusion::object_store::Error as E;
            match inner.as_ref() {
                E::NotFound { .. } => {
                    ReadError::File("the object vanished while the crawler ran".into())
                }
                E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                    ReadError::File(format!("permission denied: {inner}"))
                }
                other => ReadError::Store(other.to_string()),
            }
        }
        other => ReadError::File(format!("corrupt or unreadable: {other}")),
    }
}

fn extension_of(name: &str) -> (Compression, String) {
    let lower = name.to_ascii_lowercase();
    let (compression, rest) = if let Some(rest) = lower.strip_suffix(".gz") {
        (Compression::Gzip, rest.to_string())
    } else if let Some(rest) = lower.strip_suffix(".gzip") {
        (Compression::Gzip, rest.to_string())
    } else if let Some(rest) = lower.strip_suffix(".zst") {
        (Compression::Zstd, rest.to_string())
    } else if let Some(rest) = lower.strip_suffix(".zstd") {
        (Compression::Zstd, rest.to_string())
    } else {
        (Compression::None, lower)
    };
    let ext = rest.rsplit_once('.').map(|(_, e)| e.to_string());
    (compression, ext.unwrap_or_default())
}

impl Inferrer {
    pub fn new(state: SessionState, store: Arc<dyn ObjectStore>) -> Self {
        Self { state, store }
    }

    /// The format and columns of one file.
    pub async fn infer(&self, meta: &ObjectMeta) -> Result<FileSchema, ReadError> {
        let name = meta.location.filename().unwrap_or_default();
        let (mut compression, ext) = extension_of(name);
        if compression == Compression::None {
            match ext.as_str() {
                "parquet" | "parq" => return self.infer_binary(meta, StorageFormat::Parquet).await,
                "avro" => return self.infer_binary(meta, StorageFormat::Avro).await,
                _ => {}
            }
        }
        let len = meta.size.min(HEAD_BYTES);
        let head = self
            .store
            .get_range(&meta.location, 0..len)
            .await
            .map_err(store_error)?;
        let whole = len == meta.size;
        if compression == Compression::None {
            if head.starts_with(b"PAR1") {
                return self.infer_binary(meta, StorageFormat::Parquet).await;
            }
            if head.starts_with(b"Obj\x01") {
                return self.infer_binary(meta, StorageFormat::Avro).await;
            }
            if head.starts_with(&[0x1f, 0x8b]) {
                compression = Compression::Gzip;
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                compression = Compression::Zstd;
            }
        }
        let (text, complete) = decompress(head.to_vec(), compression, whole)?;
        let text = std::str::from_utf8(&text).map_err(|_| {
            ReadError::File("no recognizable format (not Parquet, Avro or UTF-8 text)".into())
        })?;
        if text.contains('\0') {
            return Err(ReadError::File(
                "no recognizable format (binary data that is not Parquet or Avro)".into(),
            ));
        }
        let mut lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
        if !complete {
            // The last line may be cut off by the sample.
            lines.pop();
        }
        lines.retain(|l| !l.trim().is_empty());
        if lines.is_empty() {
            return Err(ReadError::File("no records".into()));
        }
        lines.truncate(SAMPLE_RECORDS + 1);
        let mut format = FormatKey::plain(StorageFormat::TextFile);
        format.compression = compression;
        if lines[0].trim_start().starts_with('[') {
            return Err(ReadError::File(
                "a JSON array document; only JSON lines (one object per line) are supported".into(),
            ));
        }
        if lines[0].trim_start().starts_with('{') {
            format.format = StorageFormat::Json;
            let columns = infer_json(&lines)?;
            return Ok(FileSchema { format, columns });
        }
        let (delimiter, header, columns) = infer_delimited(&lines, ext.as_str())?;
        format.delimiter = Some(delimiter);
        format.header = header;
        Ok(FileSchema { format, columns })
    }

    async fn infer_binary(
        &self,
        meta: &ObjectMeta,
        format: StorageFormat,
    ) -> Result<FileSchema, ReadError> {
        let schema = match format {
            StorageFormat::Parquet => {
                ParquetFormat::default()
                    .infer_schema(&self.state, &self.store, std::slice::from_ref(meta))
                    .await
            }
            _ => {
                AvroFormat
                    .infer_schema(&self.state, &self.store, std::slice::from_ref(meta))
                    .await
            }
        }
        .map_err(datafusion_error)?;
        let columns = schema
            .fields()
            .iter()
            .filter_map(|f| hive_column(f.name(), f.data_type()))
            .collect();
        Ok(FileSchema {
            format: FormatKey::plain(format),
            columns,
        })
    }
}

/// A column with the Hive type of an Arrow type; types without one are left out (the
/// table cannot declare them, and by-name reading then skips them).
fn hive_column(name: &str, data_type: &DataType) -> Option<Column> {
    let hive = match data_type {
        DataType::Null => HiveType::String,
        other => hive_type(other).ok()?,
    };
    Some(Column::new(name.to_lowercase(), hive))
}

fn decompress(
    head: Vec<u8>,
    compression: Compression,
    whole: bool,
) -> Result<(Vec<u8>, bool), ReadError> {
    let kind = match compression {
        Compression::None => return Ok((head, whole)),
        Compression::Gzip => FileCompressionType::GZIP,
        Compression::Zstd => FileCompressionType::ZSTD,
    };
    let mut reader = kind
        .convert_read(std::io::Cursor::new(head))
        .map_err(|e| ReadError::File(format!("cannot decompress: {e}")))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // A sample cut from a compressed stream ends in an error: keep what came before it.
    let mut complete = whole;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                if out.is_empty() {
                    return Err(ReadError::File(format!(
                        "corrupt {compression:?} data: {e}"
                    )));
                }
                complete = false;
                break;
            }
        }
        if out.len() as u64 > 4 * HEAD_BYTES {
            complete = false;
            break;
        }
    }
    Ok((out, complete))
}

fn infer_json(lines: &[&str]) -> Result<Vec<Column>, ReadError> {
    let sample = lines.join("\n");
    let (schema, _) = datafusion::arrow::json::reader::infer_json_schema(
        std::io::Cursor::new(sample.as_bytes()),
        Some(SAMPLE_RECORDS),
    )
    .map_err(|e| ReadError::File(format!("not valid JSON lines: {e}")))?;
    Ok(schema
        .fields()
        .iter()
        .filter_map(|f| hive_column(f.name(), f.data_type()))
        .collect())
}

/// Splits one line of delimited text, honouring `"` quotes (`""` inside quotes is a quote).
pub(crate) fn split_line(line: &str, delimiter: u8) -> Vec<String> {
    let delimiter = delimiter as char;
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delimiter && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The delimiter whose field count is the same on the most lines, more fields winning.
fn pick_delimiter(lines: &[&str], ext: &str) -> u8 {
    if ext == "tsv" || ext == "tab" {
        return b'\t';
    }
    let mut best = (b',', 0usize, 0usize);
    for &d in DELIMITERS {
        let counts: Vec<usize> = lines.iter().map(|l| split_line(l, d).len()).collect();
        let first = counts[0];
        if first < 2 {
            continue;
        }
        let agreeing = counts.iter().filter(|&&c| c == first).count();
        if (agreeing, first) > (best.1, best.2) {
            best = (d, agreeing, first);
        }
    }
    best.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    BigInt,
    Double,
    Boolean,
    Date,
    Timestamp,
    Text,
}

fn kind_of(value: &str) -> Option<ValueKind> {
    let v = value.trim();
    if v.is_empty() || v == "\\N" {
        return None;
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    if !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) {
        // A leading zero (`007`, `01`) is a code, not a number: keep it as text.
        return Some(if digits.len() > 1 && digits.starts_with('0') {
            ValueKind::Text
        } else {
            ValueKind::BigInt
        });
    }
    if v.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && v.parse::<f64>().is_ok_and(f64::is_finite)
    {
        return Some(ValueKind::Double);
    }
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        return Some(ValueKind::Boolean);
    }
    if v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() {
        return Some(ValueKind::Date);
    }
    for pattern in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if chrono::NaiveDateTime::parse_from_str(v, pattern).is_ok() {
            return Some(ValueKind::Timestamp);
        }
    }
    Some(ValueKind::Text)
}

fn merge_kind(a: Option<ValueKind>, b: Option<ValueKind>) -> Option<ValueKind> {
    use ValueKind::*;
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x == y => Some(x),
        (Some(BigInt | Double), Some(BigInt | Double)) => Some(Double),
        (Some(Date | Timestamp), Some(Date | Timestamp)) => Some(Timestamp),
        _ => Some(Text),
    }
}

fn hive_of(kind: Option<ValueKind>) -> HiveType {
    match kind {
        Some(ValueKind::BigInt) => HiveType::BigInt,
        Some(ValueKind::Double) => HiveType::Double,
        Some(ValueKind::Boolean) => HiveType::Boolean,
        Some(ValueKind::Date) => HiveType::Date,
        Some(ValueKind::Timestamp) => HiveType::Timestamp,
        Some(ValueKind::Text) | None => HiveType::String,
    }
}

fn looks_like_name(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.len() <= 128
        && t.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && t.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '-' | '.'))
}

/// Delimiter, header and columns of delimited text.
///
/// The first line is a header (Glue's rule, made a little bolder) when its fields are
/// distinct names, and either some column's values below are not text, or no name occurs
/// again as a value of its column.
fn infer_delimited(lines: &[&str], ext: &str) -> Result<(u8, bool, Vec<Column>), ReadError> {
    let delimiter = pick_delimiter(lines, ext);
    let rows: Vec<Vec<String>> = lines.iter().map(|l| split_line(l, delimiter)).collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let kinds = |rows: &[Vec<String>]| -> Vec<Option<ValueKind>> {
        (0..width)
            .map(|i| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .map(|v| kind_of(v))
                    .fold(None, merge_kind)
            })
            .collect()
    };
    let first = &rows[0];
    let body = &rows[1..];
    let distinct = {
        let mut names: Vec<String> = first.iter().map(|f| column_name(f)).collect();
        names.sort();
        names.dedup();
        names.len() == first.len()
    };
    let header = first.len() == width
        && distinct
        && first.iter().all(|f| looks_like_name(f))
        && !body.is_empty()
        && {
            let body_kinds = kinds(body);
            body_kinds
                .iter()
                .any(|k| !matches!(k, Some(ValueKind::Text) | None))
                || first.iter().enumerate().all(|(i, name)| {
                    body.iter()
                        .all(|r| r.get(i).is_none_or(|v| v.trim() != name.trim()))
                })
        };
    let (names, data): (Vec<String>, &[Vec<String>]) = if header {
        (first.iter().map(|f| column_name(f)).collect(), body)
    } else {
        ((0..width).map(|i| format!("col{i}")).collect(), &rows[..])
    };
    let columns = names
        .into_iter()
        .zip(kinds(data))
        .map(|(name, kind)| Column::new(name, hive_of(kind)))
        .collect();
    Ok((delimiter, header, columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(columns: &[Column]) -> Vec<String> {
        columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.data_type))
            .collect()
    }

    #[test]
    fn csv_header_delimiter_and_types_are_inferred() {
        let lines = [
            "id;name;price;day;code",
            "1;\"a; b\";2.5;2026-11-01;007",
            "2;c;3;2026-11-02;010",
        ];
        let (delimiter, header, columns) = infer_delimited(&lines, "csv").unwrap();
        assert_eq!(delimiter, b';');
        assert!(header);
        assert_eq!(
            types(&columns),
            [
                "id bigint",
                "name string",
                "price double",
                "day date",
                "code string"
            ]
        );
    }

    #[test]
    fn csv_without_header_gets_glue_column_names() {
        let lines = ["1\tx\ttrue", "2\ty\tfalse"];
        let (delimiter, header, columns) = infer_delimited(&lines, "txt").unwrap();
        assert_eq!(delimiter, b'\t');
        assert!(!header);
        assert_eq!(
            types(&columns),
            ["col0 bigint", "col1 string", "col2 boolean"]
        );
    }

    #[test]
    fn quoted_fields_keep_delimiters_and_quotes() {
        assert_eq!(
            split_line(r#"1,"a, ""b""",c"#, b','),
            vec!["1", r#"a, "b""#, "c"]
        );
    }
}
