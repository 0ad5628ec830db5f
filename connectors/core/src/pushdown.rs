//! What a source is sent: identifiers, literals and filters in its SQL dialect, and only
//! the filters whose result there is the result Quarry would compute.
//!
//! # Filters
//! A filter is pushed when it compares a column with literals (`=`, `<>`, `<`, `<=`, `>`,
//! `>=`, `IN`, `BETWEEN`, `LIKE`, `IS [NOT] NULL`, combined with `AND`/`OR`/`NOT`) and the
//! comparison means the same in the source:
//! * numbers, dates and booleans everywhere; timestamps without time zone in PostgreSQL;
//! * text in PostgreSQL for `text`/`varchar` columns: equality and `LIKE` compare bytes
//!   under every deterministic collation, range comparisons get `COLLATE "C"` (byte order,
//!   as Quarry sorts); `char(n)` is not pushed (it ignores trailing spaces);
//! * text in MySQL is not pushed: its collations ignore trailing spaces (PAD SPACE) and
//!   usually case, so Quarry filters it.
//!
//! Arithmetic is never pushed (MySQL's `/` on integers is not Quarry's).

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Like, Operator};
use datafusion_table_providers::SOURCE_TYPE_METADATA_KEY;

use crate::ConnectorKind;

/// Where the columns of a pushed expression come from: a table's own columns, or the
/// output of a remote subquery.
pub(crate) trait Columns {
    /// The SQL that names `column` in the statement, and its field (type, and the source
    /// type in the metadata for a column read straight from a table).
    fn resolve(&self, column: &Column) -> Option<(String, &Field)>;
}

/// The columns of one table, by name.
struct TableColumns<'a> {
    dialect: Dialect,
    schema: &'a Schema,
}

impl Columns for TableColumns<'_> {
    fn resolve(&self, column: &Column) -> Option<(String, &Field)> {
        let field = self.schema.field_with_name(&column.name).ok()?;
        Some((self.dialect.quote_ident(&column.name), field))
    }
}

/// The SQL dialect of one kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    kind: ConnectorKind,
}

impl Dialect {
    pub fn new(kind: ConnectorKind) -> Self {
        Self { kind }
    }

    pub fn quote_ident(&self, name: &str) -> String {
        match self.kind {
            ConnectorKind::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            ConnectorKind::MySql => format!("`{}`", name.replace('`', "``")),
        }
    }

    pub fn string_literal(&self, text: &str) -> String {
        match self.kind {
            ConnectorKind::Postgres => format!("'{}'", text.replace('\'', "''")),
            // MySQL reads backslashes in literals as escapes unless NO_BACKSLASH_ESCAPES.
            ConnectorKind::MySql => {
                format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
            }
        }
    }

    /// `schema.table`, quoted.
    pub fn table(&self, schema: &str, table: &str) -> String {
        format!("{}.{}", self.quote_ident(schema), self.quote_ident(table))
    }

    pub(crate) fn list_schemas_sql(&self, _database: Option<&str>) -> String {
        match self.kind {
            ConnectorKind::Postgres => "SELECT nspname::text AS name FROM pg_catalog.pg_namespace \
                 WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%' ORDER BY 1"
                .to_string(),
            ConnectorKind::MySql => "SELECT SCHEMA_NAME AS name FROM INFORMATION_SCHEMA.SCHEMATA \
                 WHERE SCHEMA_NAME NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') \
                 ORDER BY 1"
                .to_string(),
        }
    }

    pub(crate) fn list_tables_sql(&self, schema: &str) -> String {
        let schema = self.string_literal(schema);
        match self.kind {
            ConnectorKind::Postgres => format!(
                "SELECT c.relname::text AS name FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = {schema} AND c.relkind IN ('r', 'v', 'm', 'f', 'p') ORDER BY 1"
            ),
            ConnectorKind::MySql => format!(
                "SELECT TABLE_NAME AS name FROM INFORMATION_SCHEMA.TABLES \
                 WHERE TABLE_SCHEMA = {schema} ORDER BY 1"
            ),
        }
    }

    pub fn kind(&self) -> ConnectorKind {
        self.kind
    }

    /// `filter` on a table of `schema` in this dialect, or `None` when pushing it could
    /// change the result.
    pub fn filter(&self, filter: &Expr, schema: &Schema) -> Option<String> {
        self.filter_in(
            filter,
            &TableColumns {
                dialect: *self,
                schema,
            },
        )
    }

    /// `filter` over `schema`'s columns, or `None` when pushing it could change the result.
    pub(crate) fn filter_in(&self, filter: &Expr, schema: &dyn Columns) -> Option<String> {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And | Operator::Or => Some(format!(
                    "({} {} {})",
                    self.filter_in(left, schema)?,
                    if *op == Operator::And { "AND" } else { "OR" },
                    self.filter_in(right, schema)?
                )),
                _ => self.comparison(left, *op, right, schema),
            },
            Expr::Not(inner) => Some(format!("(NOT {})", self.filter_in(inner, schema)?)),
            Expr::IsNull(inner) => Some(format!("({} IS NULL)", self.column(inner, schema)?.0)),
            Expr::IsNotNull(inner) => {
                Some(format!("({} IS NOT NULL)", self.column(inner, schema)?.0))
            }
            Expr::Column(_) => {
                let (column, field) = self.column(filter, schema)?;
                (field.data_type() == &DataType::Boolean).then_some(column)
            }
            Expr::InList(list) => {
                let (column, field) = self.column(&list.expr, schema)?;
                if !self.equality_allowed(field) || list.list.is_empty() {
                    return None;
                }
                let values = list
                    .list
                    .iter()
                    .map(|v| self.literal_for(v, field))
                    .collect::<Option<Vec<_>>>()?;
                Some(format!(
                    "({column} {}IN ({}))",
                    if list.negated { "NOT " } else { "" },
                    values.join(", ")
                ))
            }
            Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }) => {
                let (column, field) = self.column(expr, schema)?;
                if !self.ordering_allowed(field) {
                    return None;
                }
                Some(format!(
                    "({}{} BETWEEN {} AND {})",
                    column,
                    if *negated { " NOT" } else { "" },
                    self.literal_for(low, field)?,
                    self.literal_for(high, field)?
                ))
            }
            Expr::Like(Like {
                negated,
                expr,
                pattern,
                escape_char,
                case_insensitive: false,
            }) => {
                let (column, field) = self.column(expr, schema)?;
                if !self.equality_allowed(field) || !is_text(field.data_type()) {
                    return None;
                }
                let pattern = self.literal_for(pattern, field)?;
                let escape = match escape_char {
                    Some(c) => format!(" ESCAPE {}", self.string_literal(&c.to_string())),
                    None => String::new(),
                };
                Some(format!(
                    "({column} {}LIKE {pattern}{escape})",
                    if *negated { "NOT " } else { "" }
                ))
            }
            _ => None,
        }
    }

    /// One ORDER BY item sorting `field` exactly as Quarry does, or `None`: numbers,
    /// decimals, dates, times and booleans; text in PostgreSQL (`text`/`varchar`) in byte
    /// order. NULLs are placed explicitly (MySQL has no `NULLS FIRST`: it sorts on
    /// `column IS NULL` first).
    pub fn order_item(&self, field: &Field, descending: bool, nulls_first: bool) -> Option<String> {
        self.order_item_for(
            &self.quote_ident(field.name()),
            field,
            descending,
            nulls_first,
        )
    }

    /// [`Self::order_item`] for the column `column` names in the statement.
    pub(crate) fn order_item_for(
        &self,
        column: &str,
        field: &Field,
        descending: bool,
        nulls_first: bool,
    ) -> Option<String> {
        let data_type = field.data_type();
        let orderable = match data_type {
            t if is_text(t) => {
                self.kind == ConnectorKind::Postgres && postgres_text_is_exact(field)
            }
            t if t.is_integer() => true,
            DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => true,
            DataType::Date32 | DataType::Boolean | DataType::Timestamp(_, _) => true,
            _ => false,
        };
        if !orderable {
            return None;
        }
        let direction = if descending { "DESC" } else { "ASC" };
        Some(match self.kind {
            ConnectorKind::Postgres => {
                let collate = if is_text(data_type) {
                    " COLLATE \"C\""
                } else {
                    ""
                };
                let nulls = if nulls_first { "FIRST" } else { "LAST" };
                format!("{column}{collate} {direction} NULLS {nulls}")
            }
            ConnectorKind::MySql => {
                let nulls = if nulls_first { "DESC" } else { "ASC" };
                format!("({column} IS NULL) {nulls}, {column} {direction}")
            }
        })
    }

    fn comparison(
        &self,
        left: &Expr,
        op: Operator,
        right: &Expr,
        schema: &dyn Columns,
    ) -> Option<String> {
        let symbol = match op {
            Operator::Eq => "=",
            Operator::NotEq => "<>",
            Operator::Lt => "<",
            Operator::LtEq => "<=",
            Operator::Gt => ">",
            Operator::GtEq => ">=",
            _ => return None,
        };
        if let (Some(a), Some(b)) = (self.column(left, schema), self.column(right, schema)) {
            return self.column_comparison(a, symbol, b);
        }
        // `literal op column` is `column op' literal`.
        let (column_side, literal_side, symbol) = if self.column(left, schema).is_some() {
            (left, right, symbol)
        } else {
            let flipped = match symbol {
                "<" => ">",
                "<=" => ">=",
                ">" => "<",
                ">=" => "<=",
                same => same,
            };
            (right, left, flipped)
        };
        let (column, field) = self.column(column_side, schema)?;
        let equality = matches!(symbol, "=" | "<>");
        let allowed = if equality {
            self.equality_allowed(field)
        } else {
            self.ordering_allowed(field)
        };
        if !allowed {
            return None;
        }
        let literal = self.literal_for(literal_side, field)?;
        let column = if !equality && is_text(field.data_type()) {
            format!("{column} COLLATE \"C\"")
        } else {
            column
        };
        Some(format!("({column} {symbol} {literal})"))
    }

    /// `expr` computed by the source exactly as Quarry computes it, cast to `output` (the
    /// type Quarry gives it): `+`, `-` and `*` of decimal columns and literals, whose
    /// results are exact in both (Quarry's result type holds every digit), or `None`.
    pub(crate) fn decimal_arithmetic(
        &self,
        expr: &Expr,
        schema: &dyn Columns,
        output: &DataType,
    ) -> Option<String> {
        if !matches!(output, DataType::Decimal128(_, _)) {
            return None;
        }
        let sql = self.decimal_expression(expr, schema)?;
        Some(format!("CAST({sql} AS {})", self.cast_type(output)?))
    }

    /// The source's name for `data_type` in a CAST, for the types of the results it is
    /// asked to compute (sums, averages, decimal arithmetic).
    pub(crate) fn cast_type(&self, data_type: &DataType) -> Option<String> {
        Some(match (self.kind, data_type) {
            (ConnectorKind::Postgres, DataType::Int64) => "bigint".to_string(),
            (ConnectorKind::MySql, DataType::Int64) => "SIGNED".to_string(),
            (ConnectorKind::MySql, DataType::UInt64) => "UNSIGNED".to_string(),
            (ConnectorKind::Postgres, DataType::Float64) => "double precision".to_string(),
            (ConnectorKind::MySql, DataType::Float64) => "DOUBLE".to_string(),
            (ConnectorKind::Postgres, DataType::Decimal128(p, s)) => format!("numeric({p}, {s})"),
            (ConnectorKind::MySql, DataType::Decimal128(p, s)) => format!("DECIMAL({p}, {s})"),
            _ => return None,
        })
    }

    /// `+`, `-` or `*` of decimal columns and literals, uncast (see
    /// [`Self::decimal_arithmetic`]).
    pub(crate) fn decimal_expression(&self, expr: &Expr, schema: &dyn Columns) -> Option<String> {
        match expr {
            Expr::BinaryExpr(_) => self.decimal_operand(expr, schema),
            _ => None,
        }
    }

    fn decimal_operand(&self, expr: &Expr, schema: &dyn Columns) -> Option<String> {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let symbol = match op {
                    Operator::Plus => "+",
                    Operator::Minus => "-",
                    Operator::Multiply => "*",
                    _ => return None,
                };
                Some(format!(
                    "({} {symbol} {})",
                    self.decimal_operand(left, schema)?,
                    self.decimal_operand(right, schema)?
                ))
            }
            Expr::Literal(ScalarValue::Decimal128(Some(v), _, scale), _) => {
                Some(decimal(*v, *scale))
            }
            Expr::Column(_) => {
                let (sql, field) = self.column(expr, schema)?;
                matches!(field.data_type(), DataType::Decimal128(_, _)).then_some(sql)
            }
            // Casts DataFusion adds to line operands up: integers, and decimals to a scale
            // at least their own, lose nothing.
            Expr::Cast(cast) => {
                let DataType::Decimal128(_, to_scale) = cast.field.data_type() else {
                    return None;
                };
                match cast.expr.as_ref() {
                    Expr::Literal(value, _)
                        if value.data_type().is_integer() && !value.is_null() =>
                    {
                        Some(value.to_string())
                    }
                    Expr::Literal(ScalarValue::Decimal128(Some(v), _, scale), _)
                        if scale <= to_scale =>
                    {
                        Some(decimal(*v, *scale))
                    }
                    inner => {
                        let (sql, field) = self.column(inner, schema)?;
                        match field.data_type() {
                            t if t.is_integer() => Some(sql),
                            DataType::Decimal128(_, scale) if scale <= to_scale => Some(sql),
                            _ => None,
                        }
                    }
                }
            }
            _ => None,
        }
    }

    /// `a symbol b` for two columns that compare the same way in the source: both
    /// integers, or of one type that may be compared (text in byte order).
    fn column_comparison(
        &self,
        (a, a_field): (String, &Field),
        symbol: &str,
        (b, b_field): (String, &Field),
    ) -> Option<String> {
        let (a_type, b_type) = (a_field.data_type(), b_field.data_type());
        if !(a_type == b_type || (a_type.is_integer() && b_type.is_integer())) {
            return None;
        }
        let equality = matches!(symbol, "=" | "<>");
        let allowed = |f: &Field| {
            if equality {
                self.equality_allowed(f)
            } else {
                self.ordering_allowed(f)
            }
        };
        if !allowed(a_field) || !allowed(b_field) {
            return None;
        }
        let a = if !equality && is_text(a_type) {
            format!("{a} COLLATE \"C\"")
        } else {
            a
        };
        Some(format!("({a} {symbol} {b})"))
    }

    /// A column (through a lossless integer widening DataFusion added), as the statement
    /// names it.
    pub(crate) fn column<'a>(
        &self,
        expr: &Expr,
        schema: &'a dyn Columns,
    ) -> Option<(String, &'a Field)> {
        match expr {
            Expr::Column(column) => schema.resolve(column),
            Expr::Cast(cast) => {
                let (sql, field) = self.column(&cast.expr, schema)?;
                widens_integer(field.data_type(), cast.field.data_type()).then_some((sql, field))
            }
            _ => None,
        }
    }

    pub(crate) fn equality_allowed(&self, field: &Field) -> bool {
        match field.data_type() {
            t if is_text(t) => match self.kind {
                ConnectorKind::Postgres => postgres_text_is_exact(field),
                ConnectorKind::MySql => false,
            },
            t => self.value_type_allowed(t),
        }
    }

    pub(crate) fn ordering_allowed(&self, field: &Field) -> bool {
        match field.data_type() {
            DataType::Boolean => false,
            t => self.equality_allowed(field) && (is_text(t) || self.value_type_allowed(t)),
        }
    }

    fn value_type_allowed(&self, data_type: &DataType) -> bool {
        match data_type {
            t if t.is_integer() => true,
            DataType::Float32 | DataType::Float64 => true,
            DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => true,
            DataType::Date32 | DataType::Boolean => true,
            DataType::Timestamp(_, None) => self.kind == ConnectorKind::Postgres,
            _ => false,
        }
    }

    /// `expr` as a literal comparable with `field`, or `None`.
    fn literal_for(&self, expr: &Expr, field: &Field) -> Option<String> {
        let value = match expr {
            Expr::Literal(value, _) => value,
            _ => return None,
        };
        let text = is_text(field.data_type());
        match value {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
                if text =>
            {
                Some(self.string_literal(s))
            }
            _ if text => None,
            ScalarValue::Boolean(Some(b)) => Some(if *b { "TRUE" } else { "FALSE" }.to_string()),
            ScalarValue::Int8(Some(v)) => Some(v.to_string()),
            ScalarValue::Int16(Some(v)) => Some(v.to_string()),
            ScalarValue::Int32(Some(v)) => Some(v.to_string()),
            ScalarValue::Int64(Some(v)) => Some(v.to_string()),
            ScalarValue::UInt8(Some(v)) => Some(v.to_string()),
            ScalarValue::UInt16(Some(v)) => Some(v.to_string()),
            ScalarValue::UInt32(Some(v)) => Some(v.to_string()),
            ScalarValue::UInt64(Some(v)) => Some(v.to_string()),
            ScalarValue::Float64(Some(v)) if v.is_finite() => Some(format!("{v:?}")),
            ScalarValue::Float32(Some(v)) if v.is_finite() => Some(format!("{v:?}")),
            ScalarValue::Decimal128(Some(v), _, scale) => Some(decimal(*v, *scale)),
            ScalarValue::Date32(Some(_))
            | ScalarValue::TimestampMicrosecond(Some(_), None)
            | ScalarValue::TimestampMillisecond(Some(_), None)
            | ScalarValue::TimestampSecond(Some(_), None)
            | ScalarValue::TimestampNanosecond(Some(_), None) => {
                let keyword = if matches!(value, ScalarValue::Date32(_)) {
                    "DATE"
                } else {
                    "TIMESTAMP"
                };
                // Arrow's display: `2026-03-02` and `2026-03-02T23:59:59[.fraction]`.
                let array = value.to_array().ok()?;
                let text = array_value_to_string(&array, 0).ok()?.replace('T', " ");
                Some(format!("{keyword} {}", self.string_literal(&text)))
            }
            _ => None,
        }
    }
}

pub(crate) fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// PostgreSQL text types whose comparisons are byte comparisons: `text` and `varchar`
/// (not `char(n)`, which pads, nor `citext`, which ignores case).
fn postgres_text_is_exact(field: &Field) -> bool {
    field
        .metadata()
        .get(SOURCE_TYPE_METADATA_KEY)
        .is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t == "text" || t.starts_with("character varying") || t.starts_with("varchar")
        })
}

fn widens_integer(from: &DataType, to: &DataType) -> bool {
    let rank = |t: &DataType| match t {
        DataType::Int8 => Some((true, 1)),
        DataType::Int16 => Some((true, 2)),
        DataType::Int32 => Some((true, 4)),
        DataType::Int64 => Some((true, 8)),
        DataType::UInt8 => Some((false, 1)),
        DataType::UInt16 => Some((false, 2)),
        DataType::UInt32 => Some((false, 4)),
        DataType::UInt64 => Some((false, 8)),
        _ => None,
    };
    match (rank(from), rank(to)) {
        (Some((from_signed, a)), Some((to_signed, b))) => {
            (from_signed == to_signed && b >= a) || (!from_signed && to_signed && b > a)
        }
        _ => false,
    }
}

fn decimal(value: i128, scale: i8) -> String {
    if scale <= 0 {
        return (value * 10i128.pow(scale.unsigned_abs() as u32)).to_string();
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if value < 0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::prelude::{col, lit};

    use super::*;

    fn schema() -> Schema {
        let text = |name: &str, source: &str| {
            Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
                SOURCE_TYPE_METADATA_KEY.to_string(),
                source.to_string(),
            )]))
        };
        Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            text("name", "text"),
            text("code", "character(4)"),
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new("day", DataType::Date32, true),
        ])
    }

    #[test]
    fn postgres_filters_render_with_quoting_and_byte_order() {
        let pg = Dialect::new(ConnectorKind::Postgres);
        let s = schema();
        let f = datafusion::prelude::cast(col("id"), DataType::Int64);
        assert_eq!(
            pg.filter(&f.gt(lit(5i64)), &s).as_deref(),
            Some("(\"id\" > 5)")
        );
        assert_eq!(
            pg.filter(&lit("b").lt(col("name")), &s).as_deref(),
            Some("(\"name\" COLLATE \"C\" > 'b')")
        );
        assert_eq!(
            pg.filter(&col("name").like(lit("O'B%")), &s).as_deref(),
            Some("(\"name\" LIKE 'O''B%')")
        );
        assert_eq!(pg.filter(&col("code").eq(lit("ab")), &s), None);
        assert_eq!(
            pg.filter(
                &col("price")
                    .eq(lit(ScalarValue::Decimal128(Some(-5), 10, 2)))
                    .or(col("day").is_null()),
                &s
            )
            .as_deref(),
            Some("((\"price\" = -0.05) OR (\"day\" IS NULL))")
        );
        let noon = ScalarValue::TimestampNanosecond(Some(1_772_496_000_000_000_000), None);
        let ts_schema = Schema::new(vec![Field::new(
            "at",
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
            false,
        )]);
        assert_eq!(
            pg.filter(&col("at").gt_eq(lit(noon)), &ts_schema)
                .as_deref(),
            Some("(\"at\" >= TIMESTAMP '2026-03-03 00:00:00')")
        );
        assert_eq!(
            pg.filter(&col("id").in_list(vec![lit(1), lit(2)], true), &s)
                .as_deref(),
            Some("(\"id\" NOT IN (1, 2))")
        );
        assert_eq!(
            pg.filter(&(col("id") + lit(1)).eq(lit(3)), &s),
            None,
            "arithmetic stays in Quarry"
        );
    }

    #[test]
    fn mysql_keeps_text_and_escapes_backslashes() {
        let my = Dialect::new(ConnectorKind::MySql);
        let s = schema();
        assert_eq!(my.filter(&col("name").eq(lit("a")), &s), None);
        assert_eq!(
            my.filter(&col("id").between(lit(1), lit(9)), &s).as_deref(),
            Some("(`id` BETWEEN 1 AND 9)")
        );
        assert_eq!(my.string_literal("a\\'b"), "'a\\\\''b'");
        assert_eq!(my.quote_ident("we`ird"), "`we``ird`");
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal(12345, 2), "123.45");
        assert_eq!(decimal(-7, 3), "-0.007");
        assert_eq!(decimal(5, 0), "5");
    }
}
