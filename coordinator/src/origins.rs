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

use std::hash::Hasher;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

/// Field metadata keys holding a column's origin.
const TABLE_OID_KEY: &str = "quarry.table_oid";
const COLUMN_KEY: &str = "quarry.attnum";

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

/// For each output column of `plan`, the table column it reads unchanged, with table names
/// resolved against the session's default catalog and schema.
pub(crate) fn column_origins(
    plan: &LogicalPlan,
    default_catalog: &str,
    default_schema: &str,
) -> Vec<Option<ColumnOrigin>> {
    (0..plan.schema().fields().len())
        .map(|i| {
            let (table, index) = origin(plan, i)?;
            let table = table.clone().resolve(default_catalog, default_schema);
            Some(ColumnOrigin {
                table_oid: relation_oid(&table.catalog, &table.schema, &table.table),
                column: i16::try_from(index + 1).ok()?,
            })
        })
        .collect()
}

/// The table and 0-based column that output column `i` of `plan` reads unchanged.
fn origin(plan: &LogicalPlan, i: usize) -> Option<(&TableReference, usize)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let index = match &scan.projection {
                Some(projection) => *projection.get(i)?,
                None => i,
            };
            Some((&scan.table_name, index))
        }
        LogicalPlan::Projection(projection) => {
            let column = plain_column(projection.expr.get(i)?)?;
            origin(&projection.input, index_in(&projection.input, column)?)
        }
        LogicalPlan::Aggregate(aggregate) => {
            // Grouping keys come first; a grouping set is no column (its keys are left
            // without origin).
            let column = plain_column(aggregate.group_expr.get(i)?)?;
            origin(&aggregate.input, index_in(&aggregate.input, column)?)
        }
        LogicalPlan::Window(window) if i < window.input.schema().fields().len() => {
            origin(&window.input, i)
        }
        LogicalPlan::Join(join) => {
            let left = join.left.schema().fields().len();
            match join.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    if i < left {
                        origin(&join.left, i)
                    } else {
                        origin(&join.right, i - left)
                    }
                }
                JoinType::LeftSemi | JoinType::LeftAnti => origin(&join.left, i),
                JoinType::RightSemi | JoinType::RightAnti => origin(&join.right, i),
                JoinType::LeftMark if i < left => origin(&join.left, i),
                _ => None,
            }
        }
        LogicalPlan::Filter(filter) => origin(&filter.input, i),
        LogicalPlan::Sort(sort) => origin(&sort.input, i),
        LogicalPlan::Limit(limit) => origin(&limit.input, i),
        LogicalPlan::SubqueryAlias(alias) => origin(&alias.input, i),
        LogicalPlan::Repartition(repartition) => origin(&repartition.input, i),
        LogicalPlan::Distinct(Distinct::All(input)) => origin(input, i),
        _ => None,
    }
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

/// `schema` with each column's origin kept in its field's metadata.
pub(crate) fn with_origins(schema: &Schema, origins: &[Option<ColumnOrigin>]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(origins.iter().chain(std::iter::repeat(&None)))
        .map(|(field, origin)| match origin {
            Some(origin) => {
                let mut metadata = field.metadata().clone();
                metadata.insert(TABLE_OID_KEY.into(), origin.table_oid.to_string());
                metadata.insert(COLUMN_KEY.into(), origin.column.to_string());
                field.as_ref().clone().with_metadata(metadata)
            }
            None => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `stream`, its schema carrying `origins` (unchanged when no column has one). The
/// batches pass as they are: only the stream's schema describes the result to clients,
/// and a cluster's batches may differ from it in ways `RecordBatch::with_schema` refuses
/// (a dictionary column planned, plain strings delivered after Flight).
pub(crate) fn with_stream_origins(
    stream: SendableRecordBatchStream,
    origins: &[Option<ColumnOrigin>],
) -> SendableRecordBatchStream {
    if origins.iter().all(Option::is_none) {
        return stream;
    }
    let schema = with_origins(&stream.schema(), origins);
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// The origin [`with_origins`] recorded for a result column.
pub fn column_origin(field: &Field) -> Option<ColumnOrigin> {
    let metadata = field.metadata();
    Some(ColumnOrigin {
        table_oid: metadata.get(TABLE_OID_KEY)?.parse().ok()?,
        column: metadata.get(COLUMN_KEY)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    async fn origins_of(sql: &str) -> Vec<Option<(String, i16)>> {
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
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let names = [("t", relation_oid("datafusion", "public", "t"))];
        let names = names
            .into_iter()
            .chain([("u", relation_oid("datafusion", "public", "u"))]);
        let by_oid: std::collections::HashMap<u32, &str> =
            names.map(|(name, oid)| (oid, name)).collect();
        column_origins(&plan, "datafusion", "public")
            .into_iter()
            .map(|o| o.map(|o| (by_oid[&o.table_oid].to_string(), o.column)))
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

    #[test]
    fn relation_oids_are_fixed_positive_and_above_the_counted_ones() {
        let oid = relation_oid("quarry", "tpch", "lineitem");
        assert_eq!(oid, relation_oid("quarry", "tpch", "lineitem"));
        assert_ne!(oid, relation_oid("quarry", "tpchl", "ineitem"));
        assert!((0x4000_0000..=0x7fff_ffff).contains(&oid));
    }

    #[test]
    fn origins_survive_in_field_metadata() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("n", DataType::Int64, false),
        ]);
        let origin = ColumnOrigin {
            table_oid: relation_oid("quarry", "default", "t"),
            column: 3,
        };
        let annotated = with_origins(&schema, &[Some(origin), None]);
        assert_eq!(column_origin(annotated.field(0)), Some(origin));
        assert_eq!(column_origin(annotated.field(1)), None);
    }
}
