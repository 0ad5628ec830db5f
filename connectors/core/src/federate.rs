//! Joins and aggregates in the source: [`SourcePushdown`], a logical optimizer rule that
//! turns a part of a plan whose tables all live in one connector catalog into one remote
//! statement.
//!
//! It runs after DataFusion's own rules, so filters, projections and limits are already
//! in the table scans ([`RemoteTable::scan`] renders those). Bottom up, each node over
//! pushable inputs becomes a [`Fragment`], a SELECT whose output columns are `c0, c1, ...`
//! in the node's column order, wrapping its inputs as derived tables:
//!
//! ```text
//! SELECT t2.c0 AS c0, count(*) AS c1 FROM (
//!   SELECT t0.c1 AS c0, t1.c0 AS c1 FROM (SELECT "id" AS c0, "name" AS c1 FROM "s"."a") AS t0
//!   INNER JOIN (SELECT "a_id" AS c0 FROM "s"."b") AS t1 ON (t0.c0 = t1.c0)) AS t2
//! GROUP BY t2.c0
//! ```
//!
//! The largest fragment that holds a join or an aggregate replaces its part of the plan
//! with a scan of a [`RemoteQuery`] (whose rows are that statement's) and a projection
//! that gives the columns their names back. A fragment without a join or aggregate is left
//! to the table scans, which can also split and sort.
//!
//! What is pushed is what the source computes exactly as Quarry would (see
//! [`Dialect::filter`]):
//! * joins: inner, left, right, full (PostgreSQL only), semi and anti (`EXISTS`), on
//!   equalities of columns whose comparison is exact in the source (never text in MySQL),
//!   plus pushable filters; never a null-aware anti join (`NOT IN`);
//! * aggregates: GROUP BY plain columns that compare exactly (not floats: -0 and NaN
//!   group differently), `count(*)`, `count([DISTINCT] c)`, `sum` of integers and
//!   decimals (cast to the type Quarry gives it), `avg` of integers (as a double sum
//!   divided by the count, as Quarry computes it) and `min`/`max` of orderable columns;
//! * filters over those (HAVING), projections of columns and of decimal `+`, `-`, `*`
//!   (exact in both, cast to Quarry's result type), and the LIMIT of an
//!   `ORDER BY ... LIMIT` or plain `LIMIT` above them (the sort or limit also stays in
//!   Quarry, over the few rows that come back).
//!
//! Not pushed: other arithmetic (integer overflow, division) and functions, `avg` of decimals and floats (the source's
//! rounding is not Quarry's), sums of floats (the order of additions changes the last
//! bits), unions, window functions.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, NullEquality};
use datafusion::datasource::{TableProvider, TableType, provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, Join, JoinType, Limit, LogicalPlan, LogicalPlanBuilder, Projection,
    Sort, SortExpr, TableScan,
};
use datafusion::logical_expr::{FetchType, SkipType};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::col;

use crate::pushdown::{Columns, is_text};
use crate::{ConnectorKind, Dialect, QuarryOptions, RemoteScanExec, RemoteTable, RemoteTableSpec};

/// Pushes joins and aggregates of one catalog's tables into that catalog's source (see the
/// module documentation). Off with `SET quarry.pushdown = false`.
#[derive(Debug, Default)]
pub struct SourcePushdown;

impl OptimizerRule for SourcePushdown {
    fn name(&self) -> &str {
        "quarry_source_pushdown"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let enabled = config
            .options()
            .extensions
            .get::<QuarryOptions>()
            .is_none_or(|o| o.pushdown);
        if !enabled {
            return Ok(Transformed::no(plan));
        }
        push(plan)
    }
}

/// Replaces the largest pushable parts of `plan`, top down.
fn push(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    if let Some(fragment) = Fragment::of(&plan, &mut 0).filter(Fragment::worth_pushing) {
        return Ok(Transformed::yes(fragment.into_plan(plan.schema())?));
    }
    // A sort or limit above a pushable part: the source applies the limit as well, and
    // Quarry still sorts and limits what comes back.
    let counter = &mut 0;
    let limited = match &plan {
        LogicalPlan::Sort(sort @ Sort { fetch: Some(_), .. }) => Fragment::of(&sort.input, counter)
            .filter(Fragment::worth_pushing)
            .and_then(|input| input.sorted(sort, sort.input.schema(), counter))
            .map(|fragment| (fragment, &sort.input)),
        LogicalPlan::Limit(limit) => Fragment::of(&limit.input, counter)
            .filter(Fragment::worth_pushing)
            .and_then(|input| input.limited(limit, counter))
            .map(|fragment| (fragment, &limit.input)),
        _ => None,
    };
    if let Some((fragment, input)) = limited {
        let input = Arc::new(fragment.into_plan(input.schema())?);
        let plan = match plan {
            LogicalPlan::Sort(sort) => LogicalPlan::Sort(Sort { input, ..sort }),
            LogicalPlan::Limit(limit) => LogicalPlan::Limit(Limit { input, ..limit }),
            other => other,
        };
        return Ok(Transformed::yes(plan));
    }
    plan.map_children(push)
}

/// A part of a plan as one statement of one catalog.
#[derive(Debug, Clone)]
struct Fragment {
    /// The catalog (and, for messages, the first table read).
    spec: RemoteTableSpec,
    /// A SELECT whose columns are `c0, c1, ...`, one per column of the plan node (or one
    /// placeholder column when the node has none).
    sql: String,
    /// Per column: its type and, for a column read straight from a table, the source type
    /// in the metadata (pushdown decisions read it).
    fields: Vec<Field>,
    /// Whether it joins or aggregates, which the table scans alone cannot do.
    does_work: bool,
}

/// The columns of a fragment read as the derived table `alias` of an enclosing statement.
struct Derived<'a> {
    alias: String,
    schema: &'a DFSchema,
    fields: &'a [Field],
}

impl Columns for Derived<'_> {
    fn resolve(&self, column: &Column) -> Option<(String, &Field)> {
        let index = self.schema.maybe_index_of_column(column)?;
        Some((format!("{}.c{index}", self.alias), self.fields.get(index)?))
    }
}

/// The columns of both sides of a join.
struct Both<'a>(Derived<'a>, Derived<'a>);

impl Columns for Both<'_> {
    fn resolve(&self, column: &Column) -> Option<(String, &Field)> {
        self.0.resolve(column).or_else(|| self.1.resolve(column))
    }
}

/// A fresh derived-table alias.
fn alias(counter: &mut usize) -> String {
    let name = format!("t{counter}");
    *counter += 1;
    name
}

/// `expr AS c0, ...`, or the placeholder column of a statement that needs no column.
fn select_list(items: impl IntoIterator<Item = String>) -> String {
    let list = items
        .into_iter()
        .enumerate()
        .map(|(i, sql)| format!("{sql} AS c{i}"))
        .collect::<Vec<_>>();
    if list.is_empty() {
        "1 AS c".to_string()
    } else {
        list.join(", ")
    }
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

impl Fragment {
    fn dialect(&self) -> Dialect {
        Dialect::new(self.spec.kind)
    }

    fn worth_pushing(&self) -> bool {
        self.does_work && !self.fields.is_empty()
    }

    /// Whether `other` reads the same catalog (same definition), so one statement can hold
    /// both.
    fn same_source(&self, other: &Fragment) -> bool {
        self.spec.catalog == other.spec.catalog && self.spec.version == other.spec.version
    }

    fn derived<'a>(&'a self, schema: &'a DFSchema, counter: &mut usize) -> Derived<'a> {
        Derived {
            alias: alias(counter),
            schema,
            fields: &self.fields,
        }
    }

    /// `plan` as a fragment, when all of it can be pushed.
    fn of(plan: &LogicalPlan, counter: &mut usize) -> Option<Fragment> {
        match plan {
            LogicalPlan::TableScan(scan) => Self::scan(scan),
            LogicalPlan::SubqueryAlias(alias) => Self::of(&alias.input, counter),
            LogicalPlan::Filter(filter) => {
                Self::of(&filter.input, counter)?.filter(filter, counter)
            }
            LogicalPlan::Projection(projection) => {
                Self::of(&projection.input, counter)?.project(projection, counter)
            }
            LogicalPlan::Aggregate(aggregate) => {
                Self::of(&aggregate.input, counter)?.aggregate(aggregate, counter)
            }
            LogicalPlan::Join(join) => {
                let left = Self::of(&join.left, counter)?;
                let right = Self::of(&join.right, counter)?;
                left.join(right, join, counter)
            }
            LogicalPlan::Sort(sort @ Sort { fetch: Some(_), .. }) => {
                Self::of(&sort.input, counter)?.sorted(sort, sort.input.schema(), counter)
            }
            LogicalPlan::Limit(limit) => Self::of(&limit.input, counter)?.limited(limit, counter),
            _ => None,
        }
    }

    /// A remote table's scan with its pushed projection, filters and limit.
    fn scan(scan: &TableScan) -> Option<Fragment> {
        let provider = source_as_provider(&scan.source).ok()?;
        let table = provider.downcast_ref::<RemoteTable>()?;
        let schema = table.schema();
        let projection = scan
            .projection
            .clone()
            .unwrap_or_else(|| (0..schema.fields().len()).collect());
        let dialect = Dialect::new(table.spec().kind);
        let filters = scan
            .filters
            .iter()
            .map(|f| dialect.filter(f, &schema))
            .collect::<Option<Vec<_>>>()?;
        let mut sql = format!(
            "SELECT {} FROM {}",
            select_list(projection.iter().map(|i| table.column_sql(*i))),
            dialect.table(&table.spec().schema, &table.spec().table)
        );
        if !filters.is_empty() {
            sql.push_str(&format!(" WHERE {}", filters.join(" AND ")));
        }
        if let Some(fetch) = scan.fetch {
            sql.push_str(&format!(" LIMIT {fetch}"));
        }
        Some(Fragment {
            spec: table.spec().clone(),
            sql,
            fields: projection
                .iter()
                .map(|i| schema.field(*i).clone())
                .collect(),
            does_work: false,
        })
    }

    fn filter(self, filter: &Filter, counter: &mut usize) -> Option<Fragment> {
        let columns = self.derived(filter.input.schema(), counter);
        let predicate = self.dialect().filter_in(&filter.predicate, &columns)?;
        let alias = columns.alias;
        Some(Fragment {
            sql: format!("SELECT * FROM ({}) AS {alias} WHERE {predicate}", self.sql),
            ..self
        })
    }

    fn project(self, projection: &Projection, counter: &mut usize) -> Option<Fragment> {
        let dialect = self.dialect();
        let columns = self.derived(projection.input.schema(), counter);
        let mut items = Vec::with_capacity(projection.expr.len());
        let mut fields = Vec::with_capacity(projection.expr.len());
        for (expr, (_, out)) in projection.expr.iter().zip(projection.schema.iter()) {
            let expr = strip_alias(expr);
            if let Some((sql, field)) = dialect.column(expr, &columns) {
                items.push(sql);
                fields.push(
                    field
                        .clone()
                        .with_data_type(out.data_type().clone())
                        .with_nullable(out.is_nullable()),
                );
            } else {
                items.push(dialect.decimal_arithmetic(expr, &columns, out.data_type())?);
                fields.push(Field::new("", out.data_type().clone(), out.is_nullable()));
            }
        }
        // A projection that keeps every column in order changes nothing in the statement.
        let identity = items.len() == self.fields.len()
            && items
                .iter()
                .enumerate()
                .all(|(i, item)| *item == format!("{}.c{i}", columns.alias));
        let sql = if identity {
            self.sql.clone()
        } else {
            format!(
                "SELECT {} FROM ({}) AS {}",
                select_list(items),
                self.sql,
                columns.alias
            )
        };
        Some(Fragment {
            sql,
            fields,
            ..self
        })
    }

    fn aggregate(self, aggregate: &Aggregate, counter: &mut usize) -> Option<Fragment> {
        let dialect = self.dialect();
        let columns = self.derived(aggregate.input.schema(), counter);
        let mut items = Vec::new();
        let mut groups = Vec::new();
        let mut fields = Vec::new();
        for expr in &aggregate.group_expr {
            let (sql, field) = dialect.column(expr, &columns)?;
            if !dialect.equality_allowed(field) || field.data_type().is_floating() {
                return None;
            }
            groups.push(sql.clone());
            items.push(sql);
            fields.push(field.clone());
        }
        let outputs = aggregate.schema.fields().iter().skip(groups.len());
        for (expr, out) in aggregate.aggr_expr.iter().zip(outputs) {
            let Expr::AggregateFunction(function) = strip_alias(expr) else {
                return None;
            };
            items.push(aggregate_sql(dialect, function, &columns, out.data_type())?);
            fields.push(Field::new("", out.data_type().clone(), out.is_nullable()));
        }
        let mut sql = format!(
            "SELECT {} FROM ({}) AS {}",
            select_list(items),
            self.sql,
            columns.alias
        );
        if !groups.is_empty() {
            sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
        }
        Some(Fragment {
            sql,
            fields,
            does_work: true,
            ..self
        })
    }

    fn join(self, right: Fragment, join: &Join, counter: &mut usize) -> Option<Fragment> {
        if !self.same_source(&right)
            || !self.spec.join_pushdown
            || join.null_equality != NullEquality::NullEqualsNothing
        {
            return None;
        }
        let dialect = self.dialect();
        let keyword = match join.join_type {
            JoinType::Inner => "INNER JOIN",
            JoinType::Left => "LEFT JOIN",
            JoinType::Right => "RIGHT JOIN",
            JoinType::Full if dialect.kind() == ConnectorKind::Postgres => "FULL JOIN",
            JoinType::LeftSemi | JoinType::LeftAnti if !join.null_aware => "",
            _ => return None,
        };
        let both = Both(
            self.derived(join.left.schema(), counter),
            right.derived(join.right.schema(), counter),
        );
        let mut conditions = Vec::new();
        for (l, r) in &join.on {
            // Rendered only when both sides are columns that compare exactly.
            conditions.push(dialect.filter_in(&l.clone().eq(r.clone()), &both)?);
        }
        if let Some(filter) = &join.filter {
            conditions.push(dialect.filter_in(filter, &both)?);
        }
        let on = if conditions.is_empty() {
            "1 = 1".to_string()
        } else {
            conditions.join(" AND ")
        };
        let (l, r) = (&both.0.alias, &both.1.alias);
        let (sql, fields) = if keyword.is_empty() {
            let not = if join.join_type == JoinType::LeftAnti {
                "NOT "
            } else {
                ""
            };
            (
                format!(
                    "SELECT * FROM ({}) AS {l} WHERE {not}EXISTS (SELECT 1 FROM ({}) AS {r} WHERE {on})",
                    self.sql, right.sql
                ),
                self.fields.clone(),
            )
        } else {
            let left_items = (0..self.fields.len()).map(|i| format!("{l}.c{i}"));
            let right_items = (0..right.fields.len()).map(|i| format!("{r}.c{i}"));
            let fields = self
                .fields
                .iter()
                .chain(&right.fields)
                .zip(join.schema.fields())
                .map(|(f, out)| f.clone().with_nullable(out.is_nullable()))
                .collect();
            (
                format!(
                    "SELECT {} FROM ({}) AS {l} {keyword} ({}) AS {r} ON {on}",
                    select_list(left_items.chain(right_items)),
                    self.sql,
                    right.sql
                ),
                fields,
            )
        };
        Some(Fragment {
            sql,
            fields,
            does_work: true,
            ..self
        })
    }

    /// `ORDER BY ... LIMIT n` of `sort` (whose input has `schema`), when the source sorts
    /// exactly as Quarry does.
    fn sorted(self, sort: &Sort, schema: &DFSchema, counter: &mut usize) -> Option<Fragment> {
        let fetch = sort.fetch?;
        let dialect = self.dialect();
        let columns = self.derived(schema, counter);
        let items = sort
            .expr
            .iter()
            .map(
                |SortExpr {
                     expr,
                     asc,
                     nulls_first,
                 }| {
                    let (sql, field) = dialect.column(expr, &columns)?;
                    dialect.order_item_for(&sql, field, !asc, *nulls_first)
                },
            )
            .collect::<Option<Vec<_>>>()?;
        let alias = columns.alias;
        Some(Fragment {
            sql: format!(
                "SELECT * FROM ({}) AS {alias} ORDER BY {} LIMIT {fetch}",
                self.sql,
                items.join(", ")
            ),
            ..self
        })
    }

    /// A plain `LIMIT` (with `OFFSET`, the source returns skip + fetch rows).
    fn limited(self, limit: &Limit, counter: &mut usize) -> Option<Fragment> {
        let (Ok(SkipType::Literal(skip)), Ok(FetchType::Literal(Some(fetch)))) =
            (limit.get_skip_type(), limit.get_fetch_type())
        else {
            return None;
        };
        let alias = alias(counter);
        Some(Fragment {
            sql: format!(
                "SELECT * FROM ({}) AS {alias} LIMIT {}",
                self.sql,
                skip + fetch
            ),
            ..self
        })
    }

    /// The plan that reads this fragment's statement and names its columns as `schema`
    /// (the schema of the part it replaces) does.
    fn into_plan(self, schema: &DFSchema) -> Result<LogicalPlan> {
        let fields = self
            .fields
            .iter()
            .zip(schema.fields())
            .enumerate()
            .map(|(i, (field, out))| {
                Field::new(format!("c{i}"), out.data_type().clone(), out.is_nullable())
                    .with_metadata(field.metadata().clone())
            })
            .collect::<Vec<_>>();
        let query = RemoteQuery::new(self.spec, self.sql, Arc::new(Schema::new(fields)));
        let names = schema
            .iter()
            .enumerate()
            .map(|(i, (qualifier, field))| {
                col(Column::new(Some(REMOTE_QUERY), format!("c{i}")))
                    .alias_qualified(qualifier.cloned(), field.name())
            })
            .collect::<Vec<_>>();
        LogicalPlanBuilder::scan(REMOTE_QUERY, provider_as_source(Arc::new(query)), None)?
            .project(names)?
            .build()
    }
}

/// The name of a [`RemoteQuery`]'s scan in a plan.
const REMOTE_QUERY: &str = "remote_query";

/// One aggregate call the source computes exactly as Quarry does, cast to `output` (the
/// type Quarry gives it), or `None`.
fn aggregate_sql(
    dialect: Dialect,
    function: &AggregateFunction,
    columns: &dyn Columns,
    output: &DataType,
) -> Option<String> {
    let params = &function.params;
    if params.filter.is_some() || !params.order_by.is_empty() || params.null_treatment.is_some() {
        return None;
    }
    let name = function.func.name();
    // count(*) is planned as count(1).
    if name == "count" && !params.distinct {
        match params.args.as_slice() {
            [] => return Some("count(*)".to_string()),
            [Expr::Literal(value, _)] if !value.is_null() => return Some("count(*)".to_string()),
            _ => {}
        }
    }
    let [arg] = params.args.as_slice() else {
        return None;
    };
    // avg's argument arrives cast to a double.
    let arg = match arg {
        Expr::Cast(cast) if name == "avg" && cast.field.data_type() == &DataType::Float64 => {
            cast.expr.as_ref()
        }
        other => other,
    };
    // The sum of decimal arithmetic (TPC-H's revenue), exact in the source as in Quarry.
    if name == "sum"
        && !params.distinct
        && let Some(sql) = dialect.decimal_expression(arg, columns)
    {
        return Some(format!(
            "CAST(sum({sql}) AS {})",
            dialect.cast_type(output)?
        ));
    }
    let (column, field) = dialect.column(arg, columns)?;
    let data_type = field.data_type();
    match name {
        "count" if params.distinct => dialect
            .equality_allowed(field)
            .then(|| format!("count(DISTINCT {column})")),
        "count" => Some(format!("count({column})")),
        "sum" if data_type.is_integer() || matches!(data_type, DataType::Decimal128(_, _)) => {
            let distinct = if params.distinct { "DISTINCT " } else { "" };
            Some(format!(
                "CAST(sum({distinct}{column}) AS {})",
                dialect.cast_type(output)?
            ))
        }
        // Quarry averages integers as doubles: an exact sum (below 2^53) divided once.
        // PostgreSQL's numeric avg and MySQL's 4-decimal avg would round differently.
        "avg" if data_type.is_integer() && !params.distinct && output == &DataType::Float64 => {
            let double = dialect.cast_type(output)?;
            Some(format!(
                "CAST(sum({column}) AS {double}) / NULLIF(count({column}), 0)"
            ))
        }
        "min" | "max" if dialect.ordering_allowed(field) => {
            let collate = if is_text(data_type) {
                " COLLATE \"C\""
            } else {
                ""
            };
            Some(format!("{name}({column}{collate})"))
        }
        _ => None,
    }
}

/// The rows of one remote statement, as a table: what a pushed join or aggregate reads.
/// Plain data like [`RemoteTable`], so it travels in plans.
#[derive(Debug)]
pub struct RemoteQuery {
    spec: RemoteTableSpec,
    sql: String,
    schema: SchemaRef,
}

impl RemoteQuery {
    pub fn new(spec: RemoteTableSpec, sql: String, schema: SchemaRef) -> Self {
        Self { spec, sql, schema }
    }

    pub fn spec(&self) -> &RemoteTableSpec {
        &self.spec
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }
}

#[async_trait]
impl TableProvider for RemoteQuery {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// One statement: the query's columns that are used, and its limit. The scan can still
    /// take an ORDER BY ... LIMIT (sort pushdown) when it has no limit of its own.
    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (list, schema) = match projection {
            Some(columns) if columns.is_empty() => {
                ("1 AS c".to_string(), Arc::new(Schema::empty()))
            }
            Some(columns) if columns.iter().copied().eq(0..self.schema.fields().len()) => {
                ("*".to_string(), Arc::clone(&self.schema))
            }
            // Each column keeps its name (`q.c3` is read as `c3`).
            Some(columns) => (
                columns
                    .iter()
                    .map(|i| format!("q.c{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Arc::new(self.schema.project(columns)?),
            ),
            None => ("*".to_string(), Arc::clone(&self.schema)),
        };
        let mut sql = format!("SELECT {list} FROM ({}) AS q", self.sql);
        if let Some(limit) = limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let scan = RemoteScanExec::new(self.spec.clone(), vec![sql], schema)?;
        Ok(Arc::new(if limit.is_none() {
            scan.with_sort_pushdown()
        } else {
            scan
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionContext;
    use datafusion_table_providers::SOURCE_TYPE_METADATA_KEY;

    use super::*;

    fn text(name: &str, source: &str) -> Field {
        Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
            SOURCE_TYPE_METADATA_KEY.to_string(),
            source.to_string(),
        )]))
    }

    fn table(
        catalog: &str,
        kind: ConnectorKind,
        joins: bool,
        name: &str,
        fields: Vec<Field>,
    ) -> RemoteTable {
        let spec = RemoteTableSpec {
            catalog: catalog.to_string(),
            version: 1,
            kind,
            schema: "shop".to_string(),
            table: name.to_string(),
            splits: 1,
            join_pushdown: joins,
        };
        RemoteTable::new(spec, Arc::new(Schema::new(fields)))
    }

    fn session(kind: ConnectorKind) -> SessionContext {
        session_with(kind, true)
    }

    /// A session with `customers` and `orders` in a catalog of `kind` (`joins`: its
    /// `join_pushdown`), and `items` in another catalog.
    fn session_with(kind: ConnectorKind, joins: bool) -> SessionContext {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_optimizer_rule(Arc::new(SourcePushdown))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let customers = table(
            "src",
            kind,
            joins,
            "customers",
            vec![
                Field::new("id", DataType::Int32, false),
                text("name", "text"),
                Field::new("score", DataType::Float64, true),
            ],
        );
        let orders = table(
            "src",
            kind,
            joins,
            "orders",
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("customer_id", DataType::Int64, true),
                Field::new("amount", DataType::Decimal128(10, 2), true),
            ],
        );
        let items = table(
            "other",
            kind,
            joins,
            "items",
            vec![Field::new("order_id", DataType::Int64, true)],
        );
        ctx.register_table("customers", Arc::new(customers))
            .unwrap();
        ctx.register_table("orders", Arc::new(orders)).unwrap();
        ctx.register_table("items", Arc::new(items)).unwrap();
        ctx
    }

    /// The statements of the remote queries in `sql`'s optimized plan.
    async fn pushed(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let mut found = Vec::new();
        plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
                && let Some(query) = provider.downcast_ref::<RemoteQuery>()
            {
                found.push(query.sql().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    #[tokio::test]
    async fn a_join_with_an_aggregate_becomes_one_statement() {
        let ctx = session(ConnectorKind::Postgres);
        let sql = pushed(
            &ctx,
            "SELECT c.name, count(*), sum(o.amount), max(c.name) FROM customers c \
             JOIN orders o ON o.customer_id = c.id WHERE o.id > 10 GROUP BY c.name",
        )
        .await;
        assert_eq!(sql.len(), 1, "{sql:?}");
        let sql = &sql[0];
        assert!(sql.contains("INNER JOIN"), "{sql}");
        assert!(sql.contains("WHERE (\"id\" > 10)"), "{sql}");
        assert!(sql.contains("count(*)"), "{sql}");
        assert!(sql.contains("CAST(sum("), "{sql}");
        assert!(sql.contains("AS numeric(20, 2))"), "{sql}");
        assert!(
            sql.contains("max(") && sql.contains(" COLLATE \"C\")"),
            "{sql}"
        );
        assert!(sql.contains(" GROUP BY "), "{sql}");
    }

    #[tokio::test]
    async fn mysql_keeps_text_keys_floats_and_full_joins() {
        let ctx = session(ConnectorKind::MySql);
        // Text groups in MySQL ignore case and trailing spaces: the aggregate stays, the
        // join below it is still pushed.
        let sql = pushed(
            &ctx,
            "SELECT c.name, count(*) FROM customers c JOIN orders o ON o.customer_id = c.id \
             GROUP BY c.name",
        )
        .await;
        assert_eq!(sql.len(), 1, "{sql:?}");
        assert!(!sql[0].contains("GROUP BY"), "{}", sql[0]);
        assert!(sql[0].contains("INNER JOIN"), "{}", sql[0]);
        assert!(
            pushed(&ctx, "SELECT score, count(*) FROM customers GROUP BY score")
                .await
                .is_empty(),
            "floats are not grouped in the source"
        );
        assert!(
            pushed(
                &ctx,
                "SELECT * FROM customers c FULL JOIN orders o ON o.customer_id = c.id"
            )
            .await
            .is_empty(),
            "MySQL has no FULL JOIN"
        );
    }

    #[tokio::test]
    async fn other_catalogs_arithmetic_and_avg_stay_in_quarry() {
        let ctx = session(ConnectorKind::Postgres);
        assert!(
            pushed(
                &ctx,
                "SELECT * FROM orders o JOIN items i ON i.order_id = o.id"
            )
            .await
            .is_empty(),
            "a join across catalogs is Quarry's"
        );
        assert!(
            pushed(&ctx, "SELECT avg(amount) FROM orders")
                .await
                .is_empty(),
            "a decimal avg rounds differently in the source"
        );
        let sql = pushed(&ctx, "SELECT avg(customer_id) FROM orders").await;
        assert!(
            sql.len() == 1
                && sql[0]
                    .contains("CAST(sum(t0.c0) AS double precision) / NULLIF(count(t0.c0), 0)"),
            "{sql:?}"
        );
        assert!(
            pushed(&ctx, "SELECT sum(customer_id * 2) FROM orders")
                .await
                .is_empty(),
            "integer arithmetic is not pushed"
        );
        let sql = pushed(&ctx, "SELECT sum(amount * (1 - amount)) FROM orders").await;
        assert!(
            sql.len() == 1 && sql[0].contains("CAST(sum((t0.c0 * (1 - t0.c0))) AS numeric("),
            "decimal arithmetic is exact in the source: {sql:?}"
        );
        assert!(
            pushed(&ctx, "SELECT id FROM orders WHERE id > 3")
                .await
                .is_empty(),
            "a plain scan is the table scan's"
        );
    }

    #[tokio::test]
    async fn semi_joins_and_limits_are_pushed() {
        let ctx = session(ConnectorKind::Postgres);
        let sql = pushed(
            &ctx,
            "SELECT name FROM customers c WHERE EXISTS \
             (SELECT 1 FROM orders o WHERE o.customer_id = c.id) ORDER BY name LIMIT 3",
        )
        .await;
        assert_eq!(sql.len(), 1, "{sql:?}");
        assert!(sql[0].contains("WHERE EXISTS (SELECT 1 FROM"), "{}", sql[0]);
        assert!(
            sql[0].contains("COLLATE \"C\" ASC NULLS LAST LIMIT 3"),
            "{}",
            sql[0]
        );
        assert!(
            pushed(
                &ctx,
                "SELECT id FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)"
            )
            .await
            .is_empty(),
            "NOT IN is a null-aware anti join"
        );
    }

    #[tokio::test]
    async fn without_join_pushdown_only_single_table_aggregates_are_pushed() {
        let ctx = session_with(ConnectorKind::MySql, false);
        let sql = pushed(
            &ctx,
            "SELECT c.id, o.n FROM customers c JOIN \
             (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) o \
             ON o.customer_id = c.id",
        )
        .await;
        assert_eq!(sql.len(), 1, "{sql:?}");
        assert!(!sql[0].contains("JOIN"), "{}", sql[0]);
        assert!(sql[0].contains("GROUP BY"), "{}", sql[0]);
    }

    #[tokio::test]
    async fn pushdown_off_pushes_nothing() {
        let ctx = session(ConnectorKind::Postgres);
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .extensions
            .insert(QuarryOptions { pushdown: false });
        assert!(
            pushed(
                &ctx,
                "SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id"
            )
            .await
            .is_empty()
        );
    }
}
