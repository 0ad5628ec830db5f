//! RowDescription fields as PostgreSQL describes them: the type OIDs arrow-pg picks, plus the
//! type sizes (`pg_type.typlen`) and modifiers (numeric precision and scale) that drivers read
//! to size and format columns (pgjdbc's `getPrecision`/`getScale`, ODBC's column size),
//! the table OID and column number of a column that reads a table's column unchanged, and
//! PostgreSQL's names of computed columns.

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion::arrow::datatypes::Schema;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use quarry_coordinator::{column_label, column_origin, declared_type_oid, type_modifier};

/// The fields of a result with `schema`, in `format`.
pub(crate) fn pg_fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let fields = arrow_schema_to_pg_fields(schema, format, None)?;
    Ok(fields
        .into_iter()
        .zip(schema.fields())
        .map(|(info, field)| {
            let size = type_size(info.datatype());
            let origin = column_origin(field);
            // varchar(n) and char(n) columns, which arrow-pg sees as text.
            let declared = declared_type_oid(field).and_then(Type::from_oid);
            let label = column_label(field);
            let info = match (origin, &declared) {
                (None, None) if label == info.name() => info,
                _ => FieldInfo::new(
                    label.to_string(),
                    origin.map(|o| o.table_oid as i32),
                    origin.map(|o| o.column),
                    declared.unwrap_or_else(|| info.datatype().clone()),
                    info.format(),
                ),
            };
            info.with_type_size(size)
                .with_type_modifier(type_modifier(field))
        })
        .collect())
}

/// `pg_type.typlen` of the types arrow-pg produces: fixed widths, -1 for variable width.
fn type_size(t: &Type) -> i16 {
    match *t {
        Type::BOOL | Type::CHAR => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::FLOAT4 | Type::DATE | Type::OID => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIME | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        Type::TIMETZ => 12,
        Type::INTERVAL | Type::UUID => 16,
        _ => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};

    #[test]
    fn numeric_columns_carry_precision_and_scale() {
        let schema = Schema::new(vec![
            Field::new("price", DataType::Decimal128(15, 2), true),
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]);
        let fields = pg_fields(&schema, &Format::UnifiedText).unwrap();
        // PostgreSQL sends 983046 for numeric(15,2): (15 << 16 | 2) + 4.
        assert_eq!(fields[0].type_modifier(), 983_046);
        assert_eq!(fields[0].datatype(), &Type::NUMERIC);
        assert_eq!(fields[0].type_size(), -1);
        assert_eq!((fields[1].type_modifier(), fields[1].type_size()), (-1, 8));
        assert_eq!(
            (fields[2].datatype(), fields[2].type_size()),
            (&Type::TEXT, -1)
        );
    }
}
