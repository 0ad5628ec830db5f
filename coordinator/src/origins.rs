//! Where a result column comes from: the table OID and column number that PostgreSQL's
//! RowDescription carries for a column that reads a table's column unchanged (0 and 0
//! otherwise). Drivers use them to name a column's table and base column (pgjdbc's
//! `getTableName`/`getBaseColumnName`, psycopg's `table_oid`/`table_column`) and to look
//! up its nullability in pg_attribute (pgjdbc's `isNullable`, psqlODBC).
//!
//! Quarry gives every relation an OID derived from its full name ([`relation_oid`]), so a
//! result's columns and pg_class/pg_attribute (see `pg_overlay.rs`) agree in every session
//! without asking the catalog. Views are inlined by the planner, so a view's columns name
//! the tables under it (PostgreSQL names the view).
//!
//! Also the name PostgreSQL gives a computed column, where DataFusion's differs
//! (`SELECT 1` is `?column?` rather than `Int64(1)`): clients show these names and pandas
//! and BI tools key their results by them. They travel to the wire only, in field
//! metadata; the plan keeps DataFusion's names, which must be unique where PostgreSQL's
//! need not be (`SELECT 1, 2`).

use std::hash::Hasher;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Cast, Distinct, Expr, JoinType, LogicalPlan, TryCast};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

/// Field metadata keys holding a column's origin.
const TABLE_OID_KEY: &str = "quarry.table_oid";
const COLUMN_KEY: &str = "quarry.attnum";
/// Field metadata key holding the name PostgreSQL would give a computed column.
const LABEL_KEY: &str = "quarry.pg_name";

/// The table column a result column reads unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnOrigin {
    /// `pg_class.oid` of the table.
    pub table_oid: u32,
    /// `pg_attribute.attnum`: the column's 1-based position in the table.
    pub column: i16,
}

/// The OID of relation `catalog.schema.table` in pg_class, in every session: a fixed hash
/// of the name in 0x4000_0000..0x7fff_ffff, above the OIDs pg_catalog counts up from 16384
/// for catalogs and schemas and positive as a signed 32-bit number (as clients read
/// OIDs). Two names can share an OID (about n²/2³¹ for n relations).
pub fn relation_oid(catalog: &str, schema: &str, table: &str) -> u32 {
    let mut hasher = fnv::FnvHasher::default();
    for part in [catalog, schema, table] {
        hasher.write(part.as_bytes());
        hasher.write_u8(0);
    }
    0x4000_0000 | (hasher.finish() as u32 & 0x3fff_ffff)
}

/// What RowDescription says of a result column besides its type: the table column it
/// reads unchanged, and the name PostgreSQL would give it where DataFusion names it
/// differently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnDescription {
    pub origin: Option<ColumnOrigin>,
    /// PostgreSQL's name for a computed column (`?column?` for `1 + 1`, `count` for a
    /// `count(*)` DataFusion calls `count(*)`); `None` keeps the field's name.
    pub label: Option<String>,
}

/// The description of each output column of `plan`, with table names resolved against the
/// session's default catalog and schema.
pub(crate) fn describe_columns(
    plan: &LogicalPlan,
    default_catalog: &str,
    default_schema: &str,
) -> Vec<ColumnDescription> {
    (0..plan.schema().fields().len())
        .map(|i| ColumnDescription {
            origin: origin(plan, i).and_then(|(table, index)| {
                let table = table.clone().resolve(default_catalog, default_schema);
                Some(ColumnOrigin {
                    table_oid: relation_oid(&table.catalog, &table.schema, &table.table),
                    column: i16::try_from(index + 1).ok()?,
                })
            }),
            label: label(plan, i),
        })
        .collect()
}

/// Where output column `i` of a plan is defined, looking through the nodes that pass
/// columns on unchanged (filters, sorts, limits, aliases, joins).
enum Definition<'a> {
    /// Column `index` (0-based) of a table.
    Table(&'a TableReference, usize),
    /// An expression over the columns of `input`.
    Expr(&'a Expr, &'a LogicalPlan),
    /// Column `index` of a UNION's first branch, which names the result's columns.
    Union(&'a LogicalPlan, usize),
}

fn definition(plan: &LogicalPlan, i: usize) -> Option<Definition<'_>> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let index = match &scan.projection {
                Some(projection) => *projection.get(i)?,
                None => i,
            };
            Some(Definition::Table(&scan.table_name, index))
        }
        LogicalPlan::Projection(projection) => {
            Some(Definition::Expr(projection.expr.get(i)?, &projection.input))
        }
        LogicalPlan::Aggregate(aggregate) => {
            // Grouping keys come first. With grouping sets the keys are no plain list.
            if aggregate
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_)))
            {
                return None;
            }
            let keys = aggregate.group_expr.len();
            let expr = match i.checked_sub(keys) {
                None => &aggregate.group_expr[i],
                Some(j) => aggregate.aggr_expr.get(j)?,
            };
            Some(Definition::Expr(expr, &aggregate.input))
        }
        LogicalPlan::Window(window) => {
            let passed = window.input.schema().fields().len();
            match i.checked_sub(passed) {
                None => definition(&window.input, i),
                Some(j) => Some(Definition::Expr(window.window_expr.get(j)?, &window.input)),
            }
        }
        LogicalPlan::Join(join) => {
            let left = join.left.schema().fields().len();
            match join.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    if i < left {
                        definition(&join.left, i)
                    } else {
                        definition(&join.right, i - left)
                    }
                }
                JoinType::LeftSemi | JoinType::LeftAnti => definition(&join.left, i),
                JoinType::RightSemi | JoinType::RightAnti => definition(&join.right, i),
                JoinType::LeftMark if i < left => definition(&join.left, i),
                _ => None,
            }
        }
        LogicalPlan::Union(union) => Some(Definition::Union(union.inputs.first()?, i)),
        LogicalPlan::Filter(filter) => definition(&filter.input, i),
        LogicalPlan::Sort(sort) => definition(&sort.input, i),
        LogicalPlan::Limit(limit) => definition(&limit.input, i),
        LogicalPlan::SubqueryAlias(alias) => definition(&alias.input, i),
        LogicalPlan::Repartition(repartition) => definition(&repartition.input, i),
        LogicalPlan::Distinct(Distinct::All(input)) => definition(input, i),
        _ => None,
    }
}

/// The table and 0-based column that output column `i` of `plan` reads unchanged.
fn origin(plan: &LogicalPlan, i: usize) -> Option<(&TableReference, usize)> {
    match definition(plan, i)? {
        Definition::Table(table, index) => Some((table, index)),
        Definition::Expr(expr, input) => origin(input, index_in(input, plain_column(expr)?)?),
        // PostgreSQL gives a UNION's columns no origin.
        Definition::Union(..) => None,
    }
}

/// The name PostgreSQL gives output column `i` of `plan` where it differs from
/// DataFusion's (None: the field's name stands). As PostgreSQL's parser names columns: a
/// column by its name, a function call by the function, `CASE` as `case`, a cast of a
/// constant by its type, anything else `?column?`.
fn label(plan: &LogicalPlan, i: usize) -> Option<String> {
    match definition(plan, i)? {
        Definition::Table(..) => None,
        Definition::Expr(expr, input) => expr_label(expr, input),
        Definition::Union(first, i) => label(first, i),
    }
}

fn expr_label(expr: &Expr, input: &LogicalPlan) -> Option<String> {
    match expr {
        Expr::Alias(alias) => {
            let inner = expr_label(&alias.expr, input)?;
            planner_alias(&alias.name, &alias.expr, inner)
        }
        Expr::Column(column) => label(input, index_in(input, column)?),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            match expr.as_ref() {
                Expr::Literal(..) | Expr::Placeholder(_) => {
                    Some(type_name(field.data_type()).unwrap_or(UNNAMED).to_string())
                }
                // DataFusion names a cast of `t.a` `t.a`; PostgreSQL `a`.
                Expr::Column(column) => {
                    label(input, index_in(input, column)?).or_else(|| Some(column.name.clone()))
                }
                inner => expr_label(inner, input),
            }
        }
        Expr::ScalarFunction(f) if f.name() == "get_field" => match f.args.get(1) {
            Some(Expr::Literal(ScalarValue::Utf8(Some(field)), _)) => Some(field.clone()),
            _ => Some(UNNAMED.to_string()),
        },
        Expr::ScalarFunction(f) => Some(f.name().to_string()),
        Expr::AggregateFunction(f) => Some(f.func.name().to_string()),
        Expr::WindowFunction(f) => Some(f.fun.name().to_string()),
        // PostgreSQL names a CASE after its ELSE result when that has a name of its own.
        Expr::Case(case) => case
            .else_expr
            .as_deref()
            .and_then(|e| own_label(e, input))
            .or_else(|| Some("case".to_string())),
        Expr::Exists(_) => Some("exists".to_string()),
        Expr::ScalarSubquery(subquery) => {
            let plan = subquery.subquery.as_ref();
            label(plan, 0).or_else(|| Some(plan.schema().field(0).name().clone()))
        }
        _ => Some(UNNAMED.to_string()),
    }
}

/// The name of `expr` where PostgreSQL's parser takes it from the expression itself (a
/// column, a function call, ...), not from a fallback: `?column?`, the type of a cast
/// constant, or `case`.
fn own_label(expr: &Expr, input: &LogicalPlan) -> Option<String> {
    match expr {
        Expr::Literal(..) | Expr::Placeholder(_) => None,
        Expr::Cast(Cast { expr, .. }) | Expr::TryCast(TryCast { expr, .. }) => {
            own_label(expr, input)
        }
        Expr::Column(column) => {
            label(input, index_in(input, column)?).or_else(|| Some(column.name.clone()))
        }
        Expr::Case(case) => own_label(case.else_expr.as_deref()?, input),
        other => expr_label(other, input).filter(|name| name != UNNAMED),
    }
}

/// PostgreSQL's name for a column it cannot name otherwise.
const UNNAMED: &str = "?column?";

/// The label of `expr` under alias `name` when the alias is DataFusion's rather than the
/// user's (`None`: the user's name stands): one that keeps an expression's own name
/// (UNION's casts), `count(*)`, which DataFusion plans as `count(1)` under that alias, and
/// a function called by another of its names, whose call keeps that name (`length(x)`
/// becomes `character_length(x) AS "length(x)"`; PostgreSQL says `length`).
fn planner_alias(name: &str, expr: &Expr, label: String) -> Option<String> {
    let own = expr.schema_name().to_string();
    if name == own || name.strip_prefix(label.as_str()) == Some("(*)") {
        return Some(label);
    }
    let arguments = own.strip_prefix(label.as_str())?;
    let called = name.strip_suffix(arguments)?;
    let is_name = !called.is_empty() && called.chars().all(|c| c.is_alphanumeric() || c == '_');
    (arguments.starts_with('(') && is_name).then(|| called.to_string())
}

/// PostgreSQL's name of the type a constant is cast to, as it names such a column.
fn type_name(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Boolean => "bool",
        DataType::Int16 => "int2",
        DataType::Int32 => "int4",
        DataType::Int64 => "int8",
        DataType::Float32 => "float4",
        DataType::Float64 => "float8",
        DataType::Decimal128(..) | DataType::Decimal256(..) => "numeric",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Time32(_) | DataType::Time64(_) => "time",
        DataType::Timestamp(_, None) => "timestamp",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::Interval(_) => "interval",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea",
        _ => return None,
    })
}

/// The column `expr` is, under any aliases.
fn plain_column(mut expr: &Expr) -> Option<&datafusion::common::Column> {
    while let Expr::Alias(alias) = expr {
        expr = &alias.expr;
    }
    match expr {
        Expr::Column(column) => Some(column),
        _ => None,
    }
}

fn index_in(plan: &LogicalPlan, column: &datafusion::common::Column) -> Option<usize> {
    plan.schema().index_of_column(column).ok()
}

/// `schema` with each column's description kept in its field's metadata.
pub(crate) fn with_descriptions(schema: &Schema, columns: &[ColumnDescription]) -> SchemaRef {
    let none = ColumnDescription::default();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(columns.iter().chain(std::iter::repeat(&none)))
        .map(|(field, column)| {
            let mut metadata = field.metadata().clone();
            if let Some(origin) = column.origin {
                metadata.insert(TABLE_OID_KEY.into(), origin.table_oid.to_string());
                metadata.insert(COLUMN_KEY.into(), origin.column.to_string());
            }
            if let Some(label) = &column.label {
                metadata.insert(LABEL_KEY.into(), label.clone());
            }
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `stream`, its schema carrying `columns` (unchanged when there is nothing to say). The
/// batches pass as they are: only the stream's schema describes the result to clients,
/// and a cluster's batches may differ from it in ways `RecordBatch::with_schema` refuses
/// (a dictionary column planned, plain strings delivered after Flight).
pub(crate) fn with_stream_descriptions(
    stream: SendableRecordBatchStream,
    columns: &[ColumnDescription],
) -> SendableRecordBatchStream {
    if columns.iter().all(|c| *c == ColumnDescription::default()) {
        return stream;
    }
    let schema = with_descriptions(&stream.schema(), columns);
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// The origin [`with_descriptions`] recorded for a result column.
pub fn column_origin(field: &Field) -> Option<ColumnOrigin> {
    let metadata = field.metadata();
    Some(ColumnOrigin {
        table_oid: metadata.get(TABLE_OID_KEY)?.parse().ok()?,
        column: metadata.get(COLUMN_KEY)?.parse().ok()?,
    })
}

/// The name a PostgreSQL client should see for a result column: PostgreSQL's name where
/// [`with_descriptions`] recorded one, else the field's.
pub fn column_label(field: &Field) -> &str {
    field
        .metadata()
        .get(LABEL_KEY)
        .map_or(field.name().as_str(), String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    /// The logical plan of `sql` over tables `t(a int, b text)` and `u(c bigint)`.
    async fn plan_of(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        let t = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        let u = Arc::new(Schema::new(vec![Field::new("c", DataType::Int64, true)]));
        ctx.register_table("t", Arc::new(MemTable::try_new(t, vec![vec![]]).unwrap()))
            .unwrap();
        ctx.register_table("u", Arc::new(MemTable::try_new(u, vec![vec![]]).unwrap()))
            .unwrap();
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    async fn origins_of(sql: &str) -> Vec<Option<(String, i16)>> {
        let plan = plan_of(sql).await;
        let by_oid: std::collections::HashMap<u32, &str> = ["t", "u"]
            .into_iter()
            .map(|name| (relation_oid("datafusion", "public", name), name))
            .collect();
        describe_columns(&plan, "datafusion", "public")
            .into_iter()
            .map(|c| {
                c.origin
                    .map(|o| (by_oid[&o.table_oid].to_string(), o.column))
            })
            .collect()
    }

    /// The names a PostgreSQL client sees for the columns of `sql`.
    async fn labels_of(sql: &str) -> Vec<String> {
        let plan = plan_of(sql).await;
        let columns = describe_columns(&plan, "datafusion", "public");
        let schema = with_descriptions(plan.schema().inner(), &columns);
        schema
            .fields()
            .iter()
            .map(|f| column_label(f).to_string())
            .collect()
    }

    fn at(table: &str, column: i16) -> Option<(String, i16)> {
        Some((table.to_string(), column))
    }

    #[tokio::test]
    async fn plain_columns_name_their_table_and_position_and_computed_ones_do_not() {
        assert_eq!(
            origins_of("SELECT b AS x, a, a + 1, 'k' FROM t WHERE a > 0 ORDER BY b LIMIT 3").await,
            vec![at("t", 2), at("t", 1), None, None]
        );
        assert_eq!(
            origins_of("SELECT u.c, s.b FROM (SELECT b, a FROM t) s JOIN u ON s.a = u.c").await,
            vec![at("u", 1), at("t", 2)]
        );
        assert_eq!(
            origins_of("SELECT b, count(*), row_number() OVER () FROM t GROUP BY b").await,
            vec![at("t", 2), None, None]
        );
        assert_eq!(
            origins_of("SELECT * FROM t WHERE a IN (SELECT c FROM u)").await,
            vec![at("t", 1), at("t", 2)]
        );
        assert_eq!(
            origins_of("SELECT a FROM t UNION SELECT 1").await,
            vec![None]
        );
    }

    #[tokio::test]
    async fn computed_columns_are_named_as_postgresql_names_them() {
        assert_eq!(
            labels_of("SELECT 1, 1 + 1, a, t.b, a AS x, CASE WHEN a > 0 THEN 1 END FROM t").await,
            ["?column?", "?column?", "a", "b", "x", "case"]
        );
        // A CASE is named after its ELSE result where that has a name of its own.
        assert_eq!(
            labels_of(
                "SELECT CASE WHEN a > 0 THEN 1 ELSE a END, CASE WHEN a > 0 THEN 1 ELSE 0 END, \
                 CASE WHEN a > 0 THEN 'x' ELSE upper(b) END, \
                 CASE WHEN a > 0 THEN 1 ELSE '0'::int END, \
                 CASE WHEN a > 0 THEN 1 ELSE CASE WHEN a < 0 THEN 2 ELSE a::int8 END END, \
                 CASE WHEN a > 0 THEN 1 ELSE a + 1 END FROM t"
            )
            .await,
            ["a", "case", "upper", "case", "a", "case"]
        );
        assert_eq!(
            labels_of("SELECT count(*), count(a), upper(min(b)), sum(a) AS \"sum(a)\" FROM t")
                .await,
            ["count", "count", "upper", "sum(a)"]
        );
        // A function called by another of its names keeps the name it was called by.
        assert_eq!(
            labels_of("SELECT length(b), length('x'), char_length(b) FROM t").await,
            ["length", "length", "char_length"]
        );
        assert_eq!(
            labels_of("SELECT CAST(a AS BIGINT), '2020-01-01'::date, 1::text, $1::int FROM t")
                .await,
            ["a", "date", "text", "int4"]
        );
        // Through subqueries, set operations and window functions.
        assert_eq!(
            labels_of("SELECT * FROM (SELECT 1, a + 1 AS n FROM t) s").await,
            ["?column?", "n"]
        );
        assert_eq!(labels_of("SELECT 1 UNION SELECT 2").await, ["?column?"]);
        assert_eq!(
            labels_of("SELECT a, row_number() OVER (ORDER BY a), (SELECT max(a) FROM t) FROM t")
                .await,
            ["a", "row_number", "max"]
        );
        assert_eq!(
            labels_of("SELECT EXISTS (SELECT 1 FROM t), a IS NULL FROM t").await,
            ["exists", "?column?"]
        );
    }

    #[test]
    fn relation_oids_are_fixed_positive_and_above_the_counted_ones() {
        let oid = relation_oid("quarry", "tpch", "lineitem");
        assert_eq!(oid, relation_oid("quarry", "tpch", "lineitem"));
        assert_ne!(oid, relation_oid("quarry", "tpchl", "ineitem"));
        assert!((0x4000_0000..=0x7fff_ffff).contains(&oid));
    }

    #[test]
    fn descriptions_survive_in_field_metadata() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("n", DataType::Int64, false),
        ]);
        let origin = ColumnOrigin {
            table_oid: relation_oid("quarry", "default", "t"),
            column: 3,
        };
        let described = [
            ColumnDescription {
                origin: Some(origin),
                label: None,
            },
            ColumnDescription {
                origin: None,
                label: Some("count".into()),
            },
        ];
        let annotated = with_descriptions(&schema, &described);
        assert_eq!(column_origin(annotated.field(0)), Some(origin));
        assert_eq!(column_label(annotated.field(0)), "a");
        assert_eq!(column_origin(annotated.field(1)), None);
        assert_eq!(column_label(annotated.field(1)), "count");
    }
}
