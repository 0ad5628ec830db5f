//! [`MetastoreScanExec`]: marks the file scan of a metastore table so EXPLAIN shows how many
//! of the table's partitions it reads (`partitions=N/M`), and so a worker that decodes the
//! scan knows which table's rules apply to its files. Everything else is its child's: it
//! forwards ordering, partitioning, statistics, limits and filter pushdown unchanged.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics,
};
use datafusion_datasource_parquet::metadata::DFParquetMetadata;
use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStore};

use crate::schema_check::readable_as;

/// The scan of one metastore table: `input` reads its files, of `partitions`
/// (read, of the table's) when the table is partitioned.
#[derive(Debug)]
pub struct MetastoreScanExec {
    table: String,
    partitions: Option<(usize, usize)>,
    input: Arc<dyn ExecutionPlan>,
}

impl MetastoreScanExec {
    pub fn new(
        table: String,
        partitions: Option<(usize, usize)>,
        input: Arc<dyn ExecutionPlan>,
    ) -> Self {
        Self {
            table,
            partitions,
            input,
        }
    }

    /// Qualified table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// `(partitions read, partitions of the table)`; `None` when it has no partitions.
    pub fn partitions(&self) -> Option<(usize, usize)> {
        self.partitions
    }
}

impl DisplayAs for MetastoreScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "MetastoreScanExec: table={}", self.table)?;
                match self.partitions {
                    Some((read, total)) => write!(f, ", partitions={read}/{total}"),
                    None => Ok(()),
                }
            }
            DisplayFormatType::TreeRender => {
                write!(f, "table={}", self.table)?;
                match self.partitions {
                    Some((read, total)) => write!(f, "\npartitions={read}/{total}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl ExecutionPlan for MetastoreScanExec {
    fn name(&self) -> &str {
        "MetastoreScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        // No expressions of its own.
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        Ok(Arc::new(Self {
            table: self.table.clone(),
            partitions: self.partitions,
            input,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, Arc::clone(&context))?;
        let Some(files) = ParquetFiles::of(&self.input, &context) else {
            return Ok(stream);
        };
        // A file whose column cannot be read as the table's type fails the scan with a
        // message naming the column (schema_check.rs, which sees schemas but not files);
        // this finds and names the file.
        let schema = stream.schema();
        let named = stream.then(move |item| {
            let files = files.clone();
            async move {
                match item {
                    Err(e) => Err(files.name_the_file(e).await),
                    ok => ok,
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, named)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

/// The Parquet files a scan reads, to find the one a schema error is about.
#[derive(Clone)]
struct ParquetFiles {
    store: Arc<dyn ObjectStore>,
    files: Vec<ObjectMeta>,
    table_schema: SchemaRef,
    location: ObjectStoreUrl,
}

impl ParquetFiles {
    fn of(input: &Arc<dyn ExecutionPlan>, context: &TaskContext) -> Option<Self> {
        let config = input
            .downcast_ref::<DataSourceExec>()?
            .data_source()
            .downcast_ref::<FileScanConfig>()?;
        if config.file_source().file_type() != "parquet" {
            return None;
        }
        // Every file of the scan: DataFusion lets a partition's stream take files queued for
        // its siblings, so the partition that fails may not be the one a file was planned in.
        let files = config
            .file_groups
            .iter()
            .flat_map(|group| group.files())
            .map(|f| f.object_meta.clone())
            .collect();
        Some(Self {
            store: context
                .runtime_env()
                .object_store(&config.object_store_url)
                .ok()?,
            files,
            table_schema: Arc::clone(config.file_schema()),
            location: config.object_store_url.clone(),
        })
    }

    /// `error` with the file named, when it is schema_check's and a file of the scan stores the column with a type that cannot be read as the table's.
    async fn name_the_file(&self, error: DataFusionError) -> DataFusionError {
        let message = error.to_string();
        let Some(column) = mismatched_column(&message) else {
            return error;
        };
        let Ok(declared) = self.table_schema.field_with_name(column) else {
            return error;
        };
        for file in &self.files {
            let schema = DFParquetMetadata::new(self.store.as_ref(), file)
                .fetch_schema()
                .await;
            let Ok(schema) = schema else {
                continue;
            };
            let Ok(stored) = schema.field_with_name(column) else {
                continue;
            };
            if !readable_as(stored.data_type(), declared.data_type()) {
                let root = error.find_root().to_string();
                let start = root.find("table ").unwrap_or(0);
                let text = root[start..].replacen(
                    "in a data file",
                    &format!(
                        "in data file {}{}",
                        self.location.as_str().trim_end_matches('/'),
                        absolute(&file.location)
                    ),
                    1,
                );
                return DataFusionError::Plan(text);
            }
        }
        error
    }
}

/// The column of schema_check's error, `table t: column "c" is stored as X in a data file,
/// which cannot be read as Y`.
fn mismatched_column(message: &str) -> Option<&str> {
    if !message.contains(" in a data file, which cannot be read as ") {
        return None;
    }
    let start = message.find(": column \"")? + ": column \"".len();
    let end = start + message[start..].find("\" is stored as ")?;
    Some(&message[start..end])
}

fn absolute(path: &object_store::path::Path) -> String {
    format!("/{path}")
}
