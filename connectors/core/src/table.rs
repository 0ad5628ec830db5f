//! [`RemoteTable`]: a table of a PostgreSQL or MySQL catalog as a DataFusion table.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::conjunction;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use serde::{Deserialize, Serialize};

use crate::source::READ_AS_TEXT;
use crate::{ConnectorKind, ConnectorRegistry, Dialect, QuarryOptions, RemoteScanExec};

/// Which remote table, of which catalog version: all a plan needs to name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTableSpec {
    pub catalog: String,
    pub version: i64,
    pub kind: ConnectorKind,
    pub schema: String,
    pub table: String,
    /// Into how many pieces a scan may be cut (the catalog's `splits` option).
    #[serde(default = "one")]
    pub splits: usize,
    /// Whether joins of the catalog's tables may be pushed (the catalog's `join_pushdown`).
    #[serde(default)]
    pub join_pushdown: bool,
}

fn one() -> usize {
    1
}

/// A remote table. It holds no connection: scans become [`RemoteScanExec`]s, which any
/// process with a registry can run.
#[derive(Debug)]
pub struct RemoteTable {
    spec: RemoteTableSpec,
    schema: SchemaRef,
}

impl RemoteTable {
    pub fn new(spec: RemoteTableSpec, schema: SchemaRef) -> Self {
        Self { spec, schema }
    }

    pub fn spec(&self) -> &RemoteTableSpec {
        &self.spec
    }

    fn dialect(&self) -> Dialect {
        Dialect::new(self.spec.kind)
    }

    /// The pieces of a parallel read, when the catalog asks for them.
    async fn split_predicates(&self, state: &dyn Session) -> Result<Vec<String>> {
        if self.spec.splits < 2 {
            return Ok(vec![]);
        }
        let Some(registry) = state.config().get_extension::<ConnectorRegistry>() else {
            return Ok(vec![]);
        };
        let source = registry
            .source(&self.spec.catalog, Some(self.spec.version))
            .await?;
        Ok(source
            .split_predicates(&self.spec.schema, &self.spec.table, self.spec.splits)
            .await?)
    }

    /// Column `index` as a SELECT reads it: its quoted name, or a cast to text for a type
    /// without a mapping that the catalog reads as text.
    pub(crate) fn column_sql(&self, index: usize) -> String {
        let field = self.schema.field(index);
        let name = self.dialect().quote_ident(field.name());
        if field.metadata().contains_key(READ_AS_TEXT) {
            match self.spec.kind {
                ConnectorKind::Postgres => format!("CAST({name} AS text)"),
                // Spatial values are binary: their text is the WKT form. The driver reads
                // no LONGTEXT expression, so the text is a VARCHAR of at most
                // MYSQL_TEXT_CHARS characters (MySQL cuts longer values, with a warning).
                ConnectorKind::MySql if is_mysql_spatial(field) => {
                    format!("CAST(ST_AsText({name}) AS CHAR({MYSQL_TEXT_CHARS}))")
                }
                ConnectorKind::MySql => format!("CAST({name} AS CHAR({MYSQL_TEXT_CHARS}))"),
            }
        } else {
            name
        }
    }

    /// `SELECT <columns> FROM <table> [WHERE ...] [LIMIT n]` in the source's dialect.
    fn select(&self, columns: &[usize], filters: &[String], limit: Option<usize>) -> String {
        let dialect = self.dialect();
        let list = if columns.is_empty() {
            // No column is needed (`count(*)`): rows are still counted.
            "1".to_string()
        } else {
            columns
                .iter()
                .map(|i| {
                    let sql = self.column_sql(*i);
                    if self.schema.field(*i).metadata().contains_key(READ_AS_TEXT) {
                        format!(
                            "{sql} AS {}",
                            dialect.quote_ident(self.schema.field(*i).name())
                        )
                    } else {
                        sql
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = format!(
            "SELECT {list} FROM {}",
            dialect.table(&self.spec.schema, &self.spec.table)
        );
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        if let Some(limit) = limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        sql
    }
}

#[async_trait]
impl TableProvider for RemoteTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters the source evaluates exactly as Quarry would are `Exact`; the rest stay in
    /// Quarry. With `quarry.pushdown` off the scan applies the `Exact` ones itself.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let dialect = self.dialect();
        Ok(filters
            .iter()
            .map(|f| match dialect.filter(f, &self.schema) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let projection = projection.cloned().unwrap_or_else(|| all.clone());
        let pushdown = state
            .config_options()
            .extensions
            .get::<QuarryOptions>()
            .is_none_or(|o| o.pushdown);
        if pushdown {
            let dialect = self.dialect();
            let rendered = filters
                .iter()
                .filter_map(|f| dialect.filter(f, &self.schema))
                .collect::<Vec<_>>();
            let schema = Arc::new(self.schema.project(&projection)?);
            let pieces = match limit {
                // A limited read is one statement: the source stops early.
                Some(_) => vec![],
                None => self.split_predicates(state).await?,
            };
            let sql = if pieces.is_empty() {
                vec![self.select(&projection, &rendered, limit)]
            } else {
                pieces
                    .into_iter()
                    .map(|piece| {
                        let mut all = rendered.clone();
                        all.push(piece);
                        self.select(&projection, &all, None)
                    })
                    .collect()
            };
            let scan = RemoteScanExec::new(self.spec.clone(), sql, schema)?;
            // A statement without LIMIT may still take the query's ORDER BY ... LIMIT.
            let scan = if limit.is_none() {
                scan.with_sort_pushdown()
            } else {
                scan
            };
            return Ok(Arc::new(scan));
        }
        // Pushdown off: read every column of every row, then filter, project and limit here.
        let whole: Arc<dyn ExecutionPlan> = Arc::new(RemoteScanExec::new(
            self.spec.clone(),
            vec![self.select(&all, &[], None)],
            Arc::clone(&self.schema),
        )?);
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let mut plan = whole;
        if !filters.is_empty() {
            let predicate = filters
                .iter()
                .map(|f| state.create_physical_expr(f.clone(), &df_schema))
                .collect::<Result<Vec<_>>>()?;
            plan = Arc::new(FilterExec::try_new(conjunction(predicate), plan)?);
        }
        if projection != all {
            let exprs = projection
                .iter()
                .map(|i| {
                    let field = self.schema.field(*i);
                    let column: Arc<dyn datafusion::physical_expr::PhysicalExpr> = Arc::new(
                        datafusion::physical_expr::expressions::Column::new(field.name(), *i),
                    );
                    (column, field.name().clone())
                })
                .collect::<Vec<_>>();
            plan = Arc::new(ProjectionExec::try_new(exprs, plan)?);
        }
        if let Some(limit) = limit {
            plan = Arc::new(GlobalLimitExec::new(plan, 0, Some(limit)));
        }
        Ok(plan)
    }
}

/// The longest VARCHAR of utf8mb4 characters: how much text of a MySQL column without an
/// Arrow mapping is read with `unsupported_types = 'text'`.
const MYSQL_TEXT_CHARS: usize = 16383;

/// Whether `field` is a MySQL spatial column (`point`, `polygon`, `geometry`, ...).
fn is_mysql_spatial(field: &datafusion::arrow::datatypes::Field) -> bool {
    field
        .metadata()
        .get(datafusion_table_providers::SOURCE_TYPE_METADATA_KEY)
        .is_some_and(|t| {
            ["point", "linestring", "polygon", "geometry", "multi"]
                .iter()
                .any(|spatial| t.starts_with(spatial))
        })
}
