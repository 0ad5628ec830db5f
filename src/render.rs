//! Printing query results: aligned tables, CSV or JSON lines.

use std::io::Write;

use clap::ValueEnum;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};

/// Output format of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned table with a row count, like psql.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row (NULLs included).
    Json,
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

/// Writes batches in the chosen format.
pub fn write(
    out: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::io::Result<()> {
    match format {
        Format::Table => write_table(out, schema, batches),
        Format::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if batches.is_empty() {
                let header: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                drop(writer);
                return writeln!(out, "{}", header.join(","));
            }
            for batch in batches {
                writer.write(batch).map_err(std::io::Error::other)?;
            }
            Ok(())
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut *out);
            for batch in batches {
                writer.write(batch).map_err(std::io::Error::other)?;
            }
            writer.finish().map_err(std::io::Error::other)
        }
    }
}

fn write_table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::io::Result<()> {
    let mut table = Table::new();
    table
        .load_preset(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(schema.fields().iter().map(|f| f.name().clone()));
    for row in quarry_coordinator::text_rows(batches).map_err(std::io::Error::other)? {
        table.add_row(row);
    }
    for (i, field) in schema.fields().iter().enumerate() {
        let numeric = is_numeric(field.data_type())
            || field.metadata().contains_key(crate::remote::NUMERIC_TEXT);
        if numeric && let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(out, "{table}")
}
