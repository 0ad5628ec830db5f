//! The crawler statements and `system.crawler.runs`.
//!
//! ```sql
//! CREATE [OR REPLACE] CRAWLER [IF NOT EXISTS] c ON 's3://bucket/prefix/' INTO DATABASE db
//!     [WITH (schedule = '0 */6 * * *', table_level = 3, schema_change = 'update',
//!            delete_behavior = 'log', table_prefix = 'raw_', exclude = '*.tmp',
//!            partition_names = 'year,month,day')]
//! RUN CRAWLER c
//! SHOW CRAWLERS
//! DROP CRAWLER [IF EXISTS] c
//! ```
//! Crawling itself is `quarry_crawler`'s; the statements are parsed by [`crate::front`];
//! this module executes and shows them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::memory::{MemorySchemaProvider, MemorySourceConfig};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use quarry_crawler::{CrawlerDefinition, CrawlerError, CrawlerOptions, CrawlerService};
use quarry_metastore::CrawlerRun;

use crate::session::{Output, Session as QuarrySession};
use crate::{CoordinatorError, Result};

/// Columns of `RUN CRAWLER` and `SHOW CRAWLERS`.
const RUN_COLUMNS: &[&str] = &[
    "crawler",
    "run_id",
    "status",
    "objects_read",
    "tables_created",
    "tables_updated",
    "tables_deleted",
    "partitions_added",
    "partitions_removed",
    "errors",
];
const SHOW_COLUMNS: &[&str] = &[
    "crawler",
    "location",
    "database",
    "options",
    "last_status",
    "last_started",
    "next_run",
];

/// A crawler statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrawlerStatement {
    Create {
        name: String,
        location: String,
        database: String,
        or_replace: bool,
        if_not_exists: bool,
        /// `WITH (...)` pairs, names lower-cased, checked when executed.
        options: Vec<(String, String)>,
    },
    Run {
        name: String,
    },
    Show,
    Drop {
        name: String,
        if_exists: bool,
    },
}

impl CrawlerStatement {
    /// The columns the statement returns; `None` for CREATE and DROP.
    pub(crate) fn result_columns(&self) -> Option<&'static [&'static str]> {
        match self {
            CrawlerStatement::Run { .. } => Some(RUN_COLUMNS),
            CrawlerStatement::Show => Some(SHOW_COLUMNS),
            _ => None,
        }
    }
}

fn crawler_error(e: CrawlerError) -> CoordinatorError {
    match e {
        CrawlerError::Metastore(m) => CoordinatorError::Metastore(m),
        CrawlerError::Files(f) => CoordinatorError::Files(f),
        other => CoordinatorError::Invalid(other.to_string()),
    }
}

/// Runs a crawler statement.
pub(crate) async fn execute(
    session: &QuarrySession,
    statement: CrawlerStatement,
) -> Result<Output> {
    let crawlers = session.engine().crawlers();
    match statement {
        CrawlerStatement::Create {
            name,
            location,
            database,
            or_replace,
            if_not_exists,
            options,
        } => {
            let options = CrawlerOptions::from_pairs(
                &name,
                options.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .map_err(crawler_error)?;
            let def = CrawlerDefinition {
                name,
                location,
                database,
                options,
            };
            match crawlers.create(def, or_replace).await {
                Err(CrawlerError::Exists(_)) if if_not_exists => {}
                other => other.map_err(crawler_error)?,
            }
            Ok(Output::Done("CREATE CRAWLER".into()))
        }
        CrawlerStatement::Run { name } => {
            let run = crawlers.run(&name).await.map_err(crawler_error)?;
            let row = vec![
                run.crawler.clone(),
                run.run_id.clone(),
                run.status.clone(),
                run.objects_read.to_string(),
                run.tables_created.to_string(),
                run.tables_updated.to_string(),
                run.tables_deleted.to_string(),
                run.partitions_added.to_string(),
                run.partitions_removed.to_string(),
                run.errors.clone(),
            ];
            Output::text_rows(RUN_COLUMNS, vec![row])
        }
        CrawlerStatement::Show => {
            let rows = crawlers
                .list()
                .await
                .map_err(crawler_error)?
                .into_iter()
                .map(|info| {
                    let options = info
                        .definition
                        .options
                        .to_pairs()
                        .into_iter()
                        .map(|(k, v)| format!("{k} = '{v}'"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let last = info.last_run.as_ref();
                    vec![
                        info.definition.name.clone(),
                        info.definition.location.clone(),
                        info.definition.database.clone(),
                        options,
                        last.map(|r| r.status.clone()).unwrap_or_default(),
                        last.map(|r| r.started_at.clone()).unwrap_or_default(),
                        info.next_run.unwrap_or_default(),
                    ]
                })
                .collect();
            Output::text_rows(SHOW_COLUMNS, rows)
        }
        CrawlerStatement::Drop { name, if_exists } => {
            if !crawlers.remove(&name).await.map_err(crawler_error)? && !if_exists {
                return Err(crawler_error(CrawlerError::NotFound(name)));
            }
            Ok(Output::Done("DROP CRAWLER".into()))
        }
    }
}

/// Schema `crawler` of catalog `system`: table `runs`.
pub(crate) fn system_schema(crawlers: &Arc<CrawlerService>) -> Arc<dyn SchemaProvider> {
    let schema = MemorySchemaProvider::new();
    schema
        .register_table(
            "runs".into(),
            Arc::new(RunsTable {
                crawlers: Arc::clone(crawlers),
            }),
        )
        .expect("a new schema");
    Arc::new(schema)
}

/// `system.crawler.runs`: every recorded crawler run, read from the metastore when scanned
/// (so runs of `quarry crawl` in another process show too).
#[derive(Debug)]
struct RunsTable {
    crawlers: Arc<CrawlerService>,
}

fn runs_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new("crawler", DataType::Utf8, false),
        Field::new("run_id", DataType::Utf8, false),
        Field::new("started", ts(), false),
        Field::new("finished", ts(), true),
        Field::new("status", DataType::Utf8, false),
        count("objects_listed"),
        count("objects_read"),
        count("tables_created"),
        count("tables_updated"),
        count("tables_deleted"),
        count("partitions_added"),
        count("partitions_removed"),
        Field::new("errors", DataType::Utf8, false),
        Field::new("log", DataType::Utf8, false),
    ]))
}

fn millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn run_columns(runs: &[CrawlerRun]) -> Vec<ArrayRef> {
    let text = |f: fn(&CrawlerRun) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(runs.iter().map(f)))
    };
    let count = |f: fn(&CrawlerRun) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            runs.iter().map(|r| f(r).min(i64::MAX as u64) as i64),
        ))
    };
    let time = |values: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
    };
    vec![
        text(|r| &r.crawler),
        text(|r| &r.run_id),
        time(
            runs.iter()
                .map(|r| millis(&r.started_at).or(Some(0)))
                .collect(),
        ),
        time(
            runs.iter()
                .map(|r| r.finished_at.as_deref().and_then(millis))
                .collect(),
        ),
        text(|r| &r.status),
        count(|r| r.objects_listed),
        count(|r| r.objects_read),
        count(|r| r.tables_created),
        count(|r| r.tables_updated),
        count(|r| r.tables_deleted),
        count(|r| r.partitions_added),
        count(|r| r.partitions_removed),
        text(|r| &r.errors),
        text(|r| &r.log),
    ]
}

#[async_trait]
impl TableProvider for RunsTable {
    fn schema(&self) -> SchemaRef {
        runs_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let runs = self
            .crawlers
            .runs()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let schema = runs_schema();
        let batch = RecordBatch::try_new(Arc::clone(&schema), run_columns(&runs))?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<Option<CrawlerStatement>> {
        Ok(match crate::front::parse(sql)? {
            Some(crate::front::Statement::Crawler(statement)) => Some(statement),
            Some(other) => panic!("not a crawler statement: {other:?}"),
            None => None,
        })
    }

    #[test]
    fn crawler_statements_parse() {
        let statement = parse(
            "CREATE CRAWLER IF NOT EXISTS c ON 's3://lake/logs/' INTO DATABASE raw \
             WITH (schedule = '0 */6 * * *', table_level = 3, exclude = '*.tmp')",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            statement,
            CrawlerStatement::Create {
                name: "c".into(),
                location: "s3://lake/logs/".into(),
                database: "raw".into(),
                or_replace: false,
                if_not_exists: true,
                options: vec![
                    ("schedule".into(), "0 */6 * * *".into()),
                    ("table_level".into(), "3".into()),
                    ("exclude".into(), "*.tmp".into()),
                ],
            }
        );
        assert_eq!(
            parse("run crawler C;").unwrap(),
            Some(CrawlerStatement::Run { name: "c".into() })
        );
        assert_eq!(
            parse("SHOW CRAWLERS").unwrap(),
            Some(CrawlerStatement::Show)
        );
        assert_eq!(
            parse("DROP CRAWLER IF EXISTS c").unwrap(),
            Some(CrawlerStatement::Drop {
                name: "c".into(),
                if_exists: true
            })
        );
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert!(parse("CREATE CRAWLER c ON 's3://x/' INTO db").is_err());
    }
}
