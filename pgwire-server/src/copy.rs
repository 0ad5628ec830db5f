//! `COPY (query) TO STDOUT` and `COPY table TO STDOUT`: the query's rows streamed to the
//! client as CopyData messages, one row per message, in PostgreSQL's text or CSV format.
//!
//! ```text
//!  COPY (SELECT ...) TO STDOUT (FORMAT csv, HEADER)
//!     └ the query runs like any other ─► batches ─► rows encoded as PostgreSQL's COPY
//!       writes them (arrow-pg's text of each value, then COPY's escaping or quoting)
//! ```
//!
//! COPY FROM and COPY to a server file or program are refused (SQLSTATE 0A000): Quarry
//! writes tables through their files, and a client's file is psql's `\copy` business.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use arrow_pg::encoder::{Encoder, encode_value};
use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::stream::BoxStream;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyResponse, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};
use quarry_coordinator::CoordinatorError;

use crate::errors::user_error;
use crate::rows::{is_time, trim_fraction};
use crate::words::{ParseResult, SyntaxError, Words};

/// A `COPY ... TO STDOUT` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyStatement {
    /// The query whose rows are copied (`SELECT * FROM t` for `COPY t`).
    pub(crate) query: String,
    pub(crate) options: CopyOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyFormat {
    Text,
    Csv,
}

/// COPY's options, with PostgreSQL's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyOptions {
    pub(crate) format: CopyFormat,
    pub(crate) header: bool,
    pub(crate) delimiter: char,
    pub(crate) null: String,
    pub(crate) quote: char,
    pub(crate) escape: char,
    pub(crate) force_quote: ForceQuote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ForceQuote {
    None,
    All,
    Columns(Vec<String>),
}

impl CopyOptions {
    fn new(format: CopyFormat) -> Self {
        let csv = format == CopyFormat::Csv;
        Self {
            format,
            header: false,
            delimiter: if csv { ',' } else { '\t' },
            null: if csv { String::new() } else { "\\N".into() },
            quote: '"',
            escape: '"',
            force_quote: ForceQuote::None,
        }
    }
}

/// Whether `sql` is a COPY statement (cheap test before parsing it).
pub(crate) fn is_copy(sql: &str) -> bool {
    sql.trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case("COPY"))
}

/// Parses a COPY statement; what Quarry does not do is an error saying so.
pub(crate) fn parse(sql: &str) -> Result<CopyStatement, CoordinatorError> {
    let mut words = Words::new(sql)
        .ok_or_else(|| CoordinatorError::Syntax("COPY statement does not tokenize".into()))?;
    parse_words(&mut words)
}

fn unsupported(message: impl Into<String>) -> CoordinatorError {
    CoordinatorError::Unsupported(message.into())
}

fn parse_words(w: &mut Words<'_>) -> Result<CopyStatement, CoordinatorError> {
    w.expect_word("COPY")?;
    let query = if w.eat(&Token::LParen) {
        w.parenthesized()?
    } else {
        let table = w.object_name()?;
        let mut columns = Vec::new();
        if w.eat(&Token::LParen) {
            loop {
                columns.push(quote_ident(&w.ident("a column name")?));
                if !w.eat(&Token::Comma) {
                    break;
                }
            }
            w.expect(&Token::RParen)?;
        }
        let projection = if columns.is_empty() {
            "*".to_string()
        } else {
            columns.join(", ")
        };
        format!("SELECT {projection} FROM {table}")
    };
    if w.eat_word("FROM") {
        return Err(unsupported(
            "COPY FROM is not supported: Quarry loads tables from their files \
             (CREATE EXTERNAL TABLE ... LOCATION, INSERT INTO ... SELECT)",
        ));
    }
    w.expect_word("TO")?;
    if w.eat_word("PROGRAM") {
        return Err(unsupported(
            "COPY TO PROGRAM is not supported; use COPY ... TO STDOUT",
        ));
    }
    if !w.eat_word("STDOUT") {
        if matches!(w.peek(), Some(Token::SingleQuotedString(_))) {
            return Err(unsupported(
                "COPY TO a server file is not supported; use COPY ... TO STDOUT \
                 (psql: \\copy ... TO 'file')",
            ));
        }
        return Err(w.unexpected("STDOUT").into());
    }
    let options = copy_options(w)?;
    w.expect_end()?;
    Ok(CopyStatement { query, options })
}

/// `[WITH] (option [value], ...)` or the pre-9.0 `[WITH] [BINARY] [DELIMITER [AS] 'x']
/// [NULL [AS] 'x'] [CSV [HEADER] [QUOTE [AS] 'x'] [ESCAPE [AS] 'x'] [FORCE QUOTE cols|*]]`.
fn copy_options(w: &mut Words<'_>) -> Result<CopyOptions, CoordinatorError> {
    w.eat_word("WITH");
    let mut given: Vec<(String, Option<String>)> = Vec::new();
    let mut force_quote = ForceQuote::None;
    if w.eat(&Token::LParen) {
        loop {
            let name = w.ident("a COPY option")?;
            if name == "force_quote" {
                force_quote = force_quote_columns(w, true)?;
            } else {
                let value = match w.peek() {
                    Some(Token::Comma | Token::RParen) => None,
                    Some(Token::Word(_)) => Some(w.ident("an option value")?),
                    Some(Token::Number(n, _)) => {
                        let n = n.clone();
                        w.advance();
                        Some(n)
                    }
                    _ => Some(w.string("an option value")?),
                };
                given.push((name, value));
            }
            if !w.eat(&Token::Comma) {
                break;
            }
        }
        w.expect(&Token::RParen)?;
    } else {
        loop {
            if w.eat_word("BINARY") {
                given.push(("format".into(), Some("binary".into())));
            } else if w.eat_word("CSV") {
                given.push(("format".into(), Some("csv".into())));
            } else if w.eat_word("HEADER") {
                given.push(("header".into(), None));
            } else if w.peek_word().as_deref() == Some("FORCE") {
                w.advance();
                w.expect_word("QUOTE")?;
                force_quote = force_quote_columns(w, false)?;
            } else if let Some(word) = w.peek_word().filter(|k| {
                matches!(
                    k.as_str(),
                    "DELIMITER" | "NULL" | "QUOTE" | "ESCAPE" | "ENCODING"
                )
            }) {
                w.advance();
                w.eat_word("AS");
                given.push((word.to_lowercase(), Some(w.string("a quoted string")?)));
            } else {
                break;
            }
        }
    }

    let format = match given.iter().rev().find(|(name, _)| name == "format") {
        None => CopyFormat::Text,
        Some((_, value)) => match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("text") => CopyFormat::Text,
            Some("csv") => CopyFormat::Csv,
            Some("binary") => {
                return Err(unsupported(
                    "COPY in binary format is not supported; use FORMAT text or csv",
                ));
            }
            other => {
                return Err(SyntaxError(format!(
                    "COPY format \"{}\" not recognized",
                    other.unwrap_or_default()
                ))
                .into());
            }
        },
    };
    let mut options = CopyOptions::new(format);
    for (name, value) in given {
        let one_char = |what: &str| -> Result<char, CoordinatorError> {
            let text = value.clone().unwrap_or_default();
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii() => Ok(c),
                _ => Err(
                    SyntaxError(format!("COPY {what} must be a single one-byte character")).into(),
                ),
            }
        };
        match name.as_str() {
            "format" => {}
            "header" => {
                options.header = match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true" | "on" | "1") => true,
                    Some("false" | "off" | "0") => false,
                    Some(other) => {
                        return Err(unsupported(format!(
                            "COPY TO takes HEADER true or false, not \"{other}\""
                        )));
                    }
                }
            }
            "delimiter" => options.delimiter = one_char("delimiter")?,
            "null" => options.null = value.unwrap_or_default(),
            "quote" | "escape" if format != CopyFormat::Csv => {
                return Err(SyntaxError(format!(
                    "COPY {} is available only in CSV mode",
                    name.to_uppercase()
                ))
                .into());
            }
            "quote" => options.quote = one_char("quote")?,
            "escape" => options.escape = one_char("escape")?,
            "encoding" => {
                let encoding = value
                    .unwrap_or_default()
                    .to_ascii_uppercase()
                    .replace('-', "");
                if encoding != "UTF8" {
                    return Err(unsupported(format!(
                        "COPY ENCODING '{encoding}' is not supported; Quarry sends UTF8"
                    )));
                }
            }
            "freeze" | "force_not_null" | "force_null" | "default" => {
                return Err(SyntaxError(format!(
                    "COPY {} is available only in COPY FROM",
                    name.to_uppercase()
                ))
                .into());
            }
            other => {
                return Err(SyntaxError(format!("option \"{other}\" not recognized")).into());
            }
        }
    }
    if force_quote != ForceQuote::None && format != CopyFormat::Csv {
        return Err(SyntaxError("COPY FORCE_QUOTE is available only in CSV mode".into()).into());
    }
    options.force_quote = force_quote;
    if options.delimiter == '\n' || options.delimiter == '\r' || options.delimiter == '\\' {
        return Err(SyntaxError(
            "COPY delimiter cannot be newline, carriage return or backslash".into(),
        )
        .into());
    }
    Ok(options)
}

/// `*` or a column list (parenthesized in the new syntax).
fn force_quote_columns(w: &mut Words<'_>, parenthesized: bool) -> ParseResult<ForceQuote> {
    if w.eat(&Token::Mul) {
        return Ok(ForceQuote::All);
    }
    if parenthesized {
        w.expect(&Token::LParen)?;
    }
    let mut columns = Vec::new();
    loop {
        columns.push(w.ident("a column name")?);
        if !w.eat(&Token::Comma) {
            break;
        }
    }
    if parenthesized {
        w.expect(&Token::RParen)?;
    }
    Ok(ForceQuote::Columns(columns))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A `COPY ... TO STDOUT` ready to send: its header line, if asked for, and its rows, one
/// CopyData message each (clients such as psycopg read a row per message).
pub(crate) struct CopyOut {
    columns: usize,
    header: Option<Bytes>,
    rows: BoxStream<'static, PgWireResult<CopyData>>,
}

impl CopyOut {
    /// Sends the copy as PostgreSQL does and returns its rows, for the tag: the header
    /// alone, then the rows, and an error ends the copy as an ErrorResponse (left to the
    /// caller) after the rows sent before it.
    pub(crate) async fn send<C>(mut self, client: &mut C) -> PgWireResult<usize>
    where
        C: Sink<PgWireBackendMessage> + Unpin,
        PgWireError: From<C::Error>,
    {
        let columns = i16::try_from(self.columns).map_err(|_| {
            user_error(CoordinatorError::Invalid(format!(
                "COPY of {} columns: at most {} can be copied",
                self.columns,
                i16::MAX
            )))
        })?;
        let formats = vec![0; self.columns];
        client
            .feed(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
                0, columns, formats,
            )))
            .await?;
        if let Some(header) = self.header {
            client
                .feed(PgWireBackendMessage::CopyData(CopyData::new(header)))
                .await?;
        }
        let mut rows = 0;
        while let Some(row) = self.rows.next().await {
            client.feed(PgWireBackendMessage::CopyData(row?)).await?;
            rows += 1;
        }
        client
            .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
            .await?;
        Ok(rows)
    }

    /// The copy for pgwire to send, which counts CopyData messages as the tag's rows: the
    /// header goes with the first row, or alone when there are none (the tag then says
    /// `COPY 1`), and an error reaches the client as a CopyFail before the error.
    pub(crate) fn into_response(self) -> CopyResponse {
        let Some(header) = self.header else {
            return CopyResponse::new(0, self.columns, self.rows);
        };
        let data = futures::stream::once(async move {
            let (first, rest) = self.rows.into_future().await;
            let first = match first {
                None => Ok(CopyData::new(header)),
                Some(Ok(row)) => {
                    let mut data = BytesMut::from(header.as_ref());
                    data.extend_from_slice(&row.data);
                    Ok(CopyData::new(data.freeze()))
                }
                Some(Err(e)) => Err(e),
            };
            futures::stream::once(async { first }).chain(rest)
        })
        .flatten();
        CopyResponse::new(0, self.columns, data)
    }
}

/// The copy of a query's rows. The query runs here up to its first row, so an error in
/// planning or before any row is an ordinary error response.
pub(crate) async fn copy_out(
    mut stream: SendableRecordBatchStream,
    options: CopyOptions,
) -> PgWireResult<CopyOut> {
    let schema = stream.schema();
    let fields = Arc::new(arrow_schema_to_pg_fields(
        &schema,
        &Format::UnifiedText,
        None,
    )?);
    let columns = fields.len();
    let force: Vec<bool> = fields
        .iter()
        .map(|f| match &options.force_quote {
            ForceQuote::None => false,
            ForceQuote::All => true,
            ForceQuote::Columns(names) => names.iter().any(|n| n == f.name()),
        })
        .collect();
    if let ForceQuote::Columns(names) = &options.force_quote
        && let Some(missing) = names
            .iter()
            .find(|n| !fields.iter().any(|f| f.name() == *n))
    {
        return Err(user_error(CoordinatorError::Invalid(format!(
            "FORCE_QUOTE column \"{missing}\" is not in the COPY's columns"
        ))));
    }
    let mut first = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| user_error(CoordinatorError::from(e)))?;
        if batch.num_rows() > 0 {
            first = Some(batch);
            break;
        }
    }
    let mut encoder = CopyRowEncoder {
        options: Arc::new(options),
        force,
        buffer: BytesMut::new(),
        value: BytesMut::new(),
        column: 0,
        single_column: columns == 1,
    };
    let header = encoder.options.header.then(|| encoder.header(&fields));
    let state = CopyState {
        batches: Some(Box::pin(futures::stream::iter(first.map(Ok)).chain(stream))),
        encoder,
        fields,
        pending: VecDeque::new(),
    };
    let rows = futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    });
    Ok(CopyOut {
        columns,
        header,
        rows: rows.boxed(),
    })
}

type BatchStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = datafusion::error::Result<RecordBatch>> + Send>>;

/// Where a copy is: the batches still to read and the rows encoded but not yet sent.
struct CopyState {
    batches: Option<BatchStream>,
    encoder: CopyRowEncoder,
    fields: Arc<Vec<FieldInfo>>,
    pending: VecDeque<PgWireResult<CopyData>>,
}

impl CopyState {
    async fn next(&mut self) -> Option<PgWireResult<CopyData>> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                return Some(row);
            }
            match self.batches.as_mut()?.next().await {
                Some(Ok(batch)) => {
                    let rows = self.encoder.encode_batch(&batch, &self.fields);
                    if rows.last().is_some_and(Result::is_err) {
                        self.batches = None;
                    }
                    self.pending.extend(rows);
                }
                Some(Err(e)) => {
                    self.batches = None;
                    return Some(Err(user_error(CoordinatorError::from(e))));
                }
                None => {
                    self.batches = None;
                    return None;
                }
            }
        }
    }
}

/// Writes rows as PostgreSQL's COPY TO does (copyto.c: CopyAttributeOutText and
/// CopyAttributeOutCSV), from each value's text form, as a DataRow would carry it.
struct CopyRowEncoder {
    options: Arc<CopyOptions>,
    force: Vec<bool>,
    buffer: BytesMut,
    /// One value's text, before escaping.
    value: BytesMut,
    column: usize,
    single_column: bool,
}

impl CopyRowEncoder {
    /// The batch's rows; a value that cannot be encoded ends them with its error.
    fn encode_batch(
        &mut self,
        batch: &RecordBatch,
        fields: &[FieldInfo],
    ) -> Vec<PgWireResult<CopyData>> {
        let schema = batch.schema();
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let encoded = batch
                .columns()
                .iter()
                .enumerate()
                .try_for_each(|(col, array)| {
                    encode_value(self, array, row, schema.field(col), &fields[col])
                });
            match encoded {
                Ok(()) => rows.push(Ok(self.take_row())),
                Err(e) => {
                    rows.push(Err(e));
                    break;
                }
            }
        }
        rows
    }

    fn header(&mut self, fields: &[FieldInfo]) -> Bytes {
        for field in fields {
            let name = field.name().as_bytes().to_vec();
            self.put_value(&name, false);
        }
        self.buffer.put_u8(b'\n');
        self.column = 0;
        self.buffer.split().freeze()
    }

    fn put_value(&mut self, text: &[u8], force_quote: bool) {
        let options = Arc::clone(&self.options);
        if self.column > 0 {
            put_char(&mut self.buffer, options.delimiter);
        }
        self.column += 1;
        match options.format {
            CopyFormat::Text => put_text(&mut self.buffer, text, options.delimiter),
            CopyFormat::Csv => {
                let quote = force_quote
                    || text == options.null.as_bytes()
                    || (self.single_column && text == b"\\.")
                    || text.iter().any(|&b| {
                        b == options.delimiter as u8
                            || b == options.quote as u8
                            || b == options.escape as u8
                            || b == b'\n'
                            || b == b'\r'
                    });
                if !quote {
                    self.buffer.extend_from_slice(text);
                    return;
                }
                put_char(&mut self.buffer, options.quote);
                for &b in text {
                    if b == options.quote as u8 || b == options.escape as u8 {
                        put_char(&mut self.buffer, options.escape);
                    }
                    self.buffer.put_u8(b);
                }
                put_char(&mut self.buffer, options.quote);
            }
        }
    }
}

fn put_char(buffer: &mut BytesMut, c: char) {
    let mut utf8 = [0u8; 4];
    buffer.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
}

/// Text format: backslash escapes for control characters, backslash and the delimiter.
fn put_text(buffer: &mut BytesMut, text: &[u8], delimiter: char) {
    for &b in text {
        match b {
            b'\\' => buffer.extend_from_slice(b"\\\\"),
            b'\n' => buffer.extend_from_slice(b"\\n"),
            b'\r' => buffer.extend_from_slice(b"\\r"),
            b'\t' => buffer.extend_from_slice(b"\\t"),
            0x08 => buffer.extend_from_slice(b"\\b"),
            0x0c => buffer.extend_from_slice(b"\\f"),
            0x0b => buffer.extend_from_slice(b"\\v"),
            b if b == delimiter as u8 => {
                buffer.put_u8(b'\\');
                buffer.put_u8(b);
            }
            b => buffer.put_u8(b),
        }
    }
}

impl Encoder for CopyRowEncoder {
    type Item = CopyData;

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        self.value.clear();
        let is_null = value
            .to_sql_text(
                pg_field.datatype(),
                &mut self.value,
                pg_field.format_options(),
            )
            .map_err(PgWireError::ApiError)?;
        if is_time(pg_field.datatype()) {
            trim_fraction(&mut self.value);
        }
        let force = self.force.get(self.column).copied().unwrap_or(false);
        match is_null {
            IsNull::Yes => {
                if self.column > 0 {
                    put_char(&mut self.buffer, self.options.delimiter);
                }
                self.column += 1;
                let null = self.options.null.clone();
                self.buffer.extend_from_slice(null.as_bytes());
            }
            IsNull::No => {
                let text = self.value.split();
                self.put_value(&text, force);
                self.value.unsplit(text);
            }
        }
        Ok(())
    }

    fn take_row(&mut self) -> CopyData {
        self.buffer.put_u8(b'\n');
        self.column = 0;
        CopyData::new(self.buffer.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_options_in_both_syntaxes() {
        let old = parse("COPY ( SELECT a FROM t ) TO STDOUT csv header").unwrap();
        assert_eq!(old.query, "SELECT a FROM t");
        assert_eq!(old.options.format, CopyFormat::Csv);
        assert!(old.options.header);
        assert_eq!(old.options.delimiter, ',');
        let new = parse(
            "copy t (a, \"B\") to stdout with (format csv, header false, delimiter '|', \
             null 'x', force_quote *);",
        )
        .unwrap();
        assert_eq!(new.query, "SELECT \"a\", \"B\" FROM t");
        assert!(!new.options.header);
        assert_eq!(
            (new.options.delimiter, new.options.null.as_str()),
            ('|', "x")
        );
        assert_eq!(new.options.force_quote, ForceQuote::All);
        let text = parse("COPY db.t TO STDOUT").unwrap();
        assert_eq!(text.query, "SELECT * FROM db.t");
        assert_eq!(
            (text.options.delimiter, text.options.null.as_str()),
            ('\t', "\\N")
        );
    }

    #[test]
    fn what_copy_does_not_do_is_named() {
        let message = |sql: &str| parse(sql).unwrap_err().user_message();
        assert!(message("COPY t FROM STDIN").contains("COPY FROM is not supported"));
        assert!(message("COPY t TO '/tmp/x'").contains("server file"));
        assert!(message("COPY t TO STDOUT (FORMAT binary)").contains("binary"));
        assert!(message("COPY t TO STDOUT (QUOTE '\"')").contains("only in CSV mode"));
        assert!(is_copy("  copy(select 1) to stdout"));
        assert!(!is_copy("COPYRIGHT"));
    }
}
