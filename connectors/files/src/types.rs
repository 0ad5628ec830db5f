//! Hive types to Arrow types and back.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use quarry_metastore::{Column, HiveType, StructField, Table};

use crate::{FilesError, Result};

/// The Arrow type a Hive column is read as.
///
/// Strings are read as `Utf8View`, as DataFusion reads Parquet strings by default.
/// Timestamps are microsecond precision without time zone, like Hive's.
pub fn arrow_type(hive: &HiveType) -> DataType {
    match hive {
        HiveType::Boolean => DataType::Boolean,
        HiveType::TinyInt => DataType::Int8,
        HiveType::SmallInt => DataType::Int16,
        HiveType::Int => DataType::Int32,
        HiveType::BigInt => DataType::Int64,
        HiveType::Float => DataType::Float32,
        HiveType::Double => DataType::Float64,
        HiveType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
        HiveType::String | HiveType::Varchar(_) | HiveType::Char(_) => DataType::Utf8View,
        HiveType::Binary => DataType::Binary,
        HiveType::Date => DataType::Date32,
        HiveType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        HiveType::Array(inner) => {
            DataType::List(Arc::new(Field::new("item", arrow_type(inner), true)))
        }
        HiveType::Map(key, value) => {
            let entries = Fields::from(vec![
                Field::new("key", arrow_type(key), false),
                Field::new("value", arrow_type(value), true),
            ]);
            DataType::Map(
                Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                false,
            )
        }
        HiveType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(&f.name, arrow_type(&f.data_type), true))
                .collect(),
        ),
    }
}

/// The Hive type that stores values of an Arrow type, for tables created from query results.
pub fn hive_type(arrow: &DataType) -> Result<HiveType> {
    Ok(match arrow {
        DataType::Boolean => HiveType::Boolean,
        DataType::Int8 => HiveType::TinyInt,
        DataType::Int16 | DataType::UInt8 => HiveType::SmallInt,
        DataType::Int32 | DataType::UInt16 => HiveType::Int,
        DataType::Int64 | DataType::UInt32 => HiveType::BigInt,
        DataType::UInt64 => HiveType::Decimal {
            precision: 20,
            scale: 0,
        },
        DataType::Float16 | DataType::Float32 => HiveType::Float,
        DataType::Float64 => HiveType::Double,
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s)
            if *p <= 38 =>
        {
            HiveType::Decimal {
                precision: *p,
                scale: *s,
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => HiveType::String,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => HiveType::Binary,
        DataType::Date32 | DataType::Date64 => HiveType::Date,
        DataType::Timestamp(_, _) => HiveType::Timestamp,
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            HiveType::Array(Box::new(hive_type(f.data_type())?))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => HiveType::Map(
                Box::new(hive_type(kv[0].data_type())?),
                Box::new(hive_type(kv[1].data_type())?),
            ),
            other => return Err(FilesError::UnsupportedArrowType(other.to_string())),
        },
        DataType::Struct(fields) => HiveType::Struct(
            fields
                .iter()
                .map(|f| {
                    Ok(StructField {
                        name: f.name().clone(),
                        data_type: hive_type(f.data_type())?,
                    })
                })
                .collect::<Result<_>>()?,
        ),
        DataType::Dictionary(_, value) => hive_type(value)?,
        other => return Err(FilesError::UnsupportedArrowType(other.to_string())),
    })
}

/// Schema of the data columns only (what the files hold).
pub fn file_schema(table: &Table) -> SchemaRef {
    Arc::new(Schema::new(
        table.columns.iter().map(column_field).collect::<Vec<_>>(),
    ))
}

/// Schema users see: data columns followed by partition keys, as in Hive.
pub fn table_schema(table: &Table) -> SchemaRef {
    Arc::new(Schema::new(
        table
            .columns
            .iter()
            .chain(&table.partition_keys)
            .map(column_field)
            .collect::<Vec<_>>(),
    ))
}

/// Field metadata holding a character column's declared type (`varchar(25)`, `char(1)`):
/// Arrow strings have no length, and PostgreSQL clients read it from the column's typmod.
pub const DECLARED_TYPE_KEY: &str = "quarry.declared_type";

/// A column as an Arrow field; `varchar(n)` and `char(n)` keep their declared type in
/// [`DECLARED_TYPE_KEY`].
fn column_field(column: &Column) -> Field {
    let field = Field::new(&column.name, arrow_type(&column.data_type), true);
    match column.data_type {
        HiveType::Varchar(_) | HiveType::Char(_) => field.with_metadata(HashMap::from([(
            DECLARED_TYPE_KEY.to_string(),
            column.data_type.to_string(),
        )])),
        _ => field,
    }
}

/// The declared type of a column read as strings, when it is `varchar(n)` or `char(n)`.
pub fn declared_character_type(field: &Field) -> Option<HiveType> {
    let declared = HiveType::parse(field.metadata().get(DECLARED_TYPE_KEY)?).ok()?;
    matches!(declared, HiveType::Varchar(_) | HiveType::Char(_)).then_some(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_types_survive_a_round_trip_through_arrow() {
        for text in [
            "int",
            "bigint",
            "decimal(15,2)",
            "string",
            "date",
            "timestamp",
            "array<map<string,struct<a:int,b:double>>>",
        ] {
            let hive = HiveType::parse(text).unwrap();
            assert_eq!(hive_type(&arrow_type(&hive)).unwrap(), hive, "{text}");
        }
    }

    #[test]
    fn character_columns_keep_their_declared_length() {
        for (text, declared) in [
            ("varchar(25)", Some(HiveType::Varchar(25))),
            ("char(1)", Some(HiveType::Char(1))),
            ("string", None),
        ] {
            let field = column_field(&Column::new("c", HiveType::parse(text).unwrap()));
            assert_eq!(field.data_type(), &DataType::Utf8View);
            assert_eq!(declared_character_type(&field), declared, "{text}");
        }
    }
}
