//! [`RemoteScanExec`]: the node that reads a remote table. Plain data, so it travels to
//! workers; the connection comes from the executing process's [`ConnectorRegistry`].
//!
//! Its one child is an in-memory source with one partition per split, holding that
//! split's number. Ballista hands each task a plan restricted to the task's partitions,
//! and it knows how to restrict in-memory sources but not Quarry's nodes: through the
//! child, a task that runs splits 2 and 3 reads statements 2 and 3, not 0 and 1.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, Partitioning, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::sort_pushdown::SortOrderPushdownResult;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::{ConnectorRegistry, Dialect, RemoteTableSpec};

/// An Arrow schema (field metadata included) as bytes, for plans that carry one.
pub fn schema_to_bytes(schema: &Schema) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, schema)?;
    writer.finish()?;
    drop(writer);
    Ok(buf)
}

/// The schema [`schema_to_bytes`] wrote.
pub fn schema_from_bytes(bytes: &[u8]) -> Result<SchemaRef> {
    Ok(StreamReader::try_new(std::io::Cursor::new(bytes), None)?.schema())
}

/// Reads one remote SELECT per split; partition `p` reads the split its child names.
#[derive(Debug)]
pub struct RemoteScanExec {
    spec: RemoteTableSpec,
    /// The statement of each split, in the source's dialect.
    sql: Vec<String>,
    schema: SchemaRef,
    /// Split numbers, one per partition (see the module documentation).
    splits: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// What the source may still be asked to do while this process plans (never
    /// serialized: pushdown happens before a plan travels).
    pushdown: SortPushdown,
}

/// Whether a scan can take a query's ORDER BY (and then its LIMIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortPushdown {
    /// Already limited, split, or not a plain pushed-down read.
    Closed,
    /// One unlimited statement: an ORDER BY may be appended.
    Open,
    /// Ordered by the source: a LIMIT may be appended.
    Ordered,
}

/// An in-memory source whose partition `i` holds the number `i`.
fn split_numbers(count: usize) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "split",
        DataType::UInt32,
        false,
    )]));
    let partitions = (0..count)
        .map(|i| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(UInt32Array::from(vec![i as u32]))],
            )
            .map(|batch| vec![batch])
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(DataSourceExec::from_data_source(
        MemorySourceConfig::try_new(&partitions, schema, None)?,
    ))
}

impl RemoteScanExec {
    pub fn new(spec: RemoteTableSpec, sql: Vec<String>, schema: SchemaRef) -> Result<Self> {
        let splits = split_numbers(sql.len())?;
        Ok(Self::with_splits(spec, sql, schema, splits))
    }

    /// A scan whose partitions read the splits `splits` names (after decoding, or after
    /// Ballista restricted it to a task's partitions).
    pub fn with_splits(
        spec: RemoteTableSpec,
        sql: Vec<String>,
        schema: SchemaRef,
        splits: Arc<dyn ExecutionPlan>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(
                splits.properties().output_partitioning().partition_count(),
            ),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            spec,
            sql,
            schema,
            splits,
            properties,
            pushdown: SortPushdown::Closed,
        }
    }

    /// Lets the planner push an ORDER BY ... LIMIT into this scan's one statement.
    pub fn with_sort_pushdown(mut self) -> Self {
        if self.sql.len() == 1 {
            self.pushdown = SortPushdown::Open;
        }
        self
    }

    /// This scan with `suffix` appended to its statement and `ordering` as its output
    /// ordering.
    fn extended(&self, suffix: &str, ordering: Option<LexOrdering>, next: SortPushdown) -> Self {
        let mut equivalence = EquivalenceProperties::new(Arc::clone(&self.schema));
        if let Some(ordering) = ordering.or_else(|| self.properties.output_ordering().cloned()) {
            equivalence =
                EquivalenceProperties::new_with_orderings(Arc::clone(&self.schema), [ordering]);
        }
        let properties = Arc::new(PlanProperties::new(
            equivalence,
            self.properties.output_partitioning().clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            spec: self.spec.clone(),
            sql: self.sql.iter().map(|s| format!("{s}{suffix}")).collect(),
            schema: Arc::clone(&self.schema),
            splits: Arc::clone(&self.splits),
            properties,
            pushdown: next,
        }
    }

    pub fn spec(&self) -> &RemoteTableSpec {
        &self.spec
    }

    pub fn sql(&self) -> &[String] {
        &self.sql
    }

    pub fn schema_ref(&self) -> &SchemaRef {
        &self.schema
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let (separator, prefix) = match t {
            DisplayFormatType::TreeRender => ("\n", ""),
            _ => (", ", "RemoteScanExec: "),
        };
        write!(f, "{prefix}catalog={}", self.spec.catalog)?;
        match self.sql.as_slice() {
            [one] => write!(f, "{separator}sql={one}"),
            many => write!(
                f,
                "{separator}splits={}{separator}sql=[{}]",
                many.len(),
                many.join("; ")
            ),
        }
    }
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        "RemoteScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.splits]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    /// `Exact` when the source can sort exactly as Quarry would (see
    /// [`Dialect::order_item`]); the optimizer then drops its sort and offers the limit.
    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
    ) -> Result<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        if self.pushdown != SortPushdown::Open || order.is_empty() {
            return Ok(SortOrderPushdownResult::Unsupported);
        }
        let dialect = Dialect::new(self.spec.kind);
        let mut items = Vec::with_capacity(order.len());
        for sort in order {
            let Some(column) = sort.expr.downcast_ref::<Column>() else {
                return Ok(SortOrderPushdownResult::Unsupported);
            };
            let Some(item) = dialect.order_item(
                self.schema.field(column.index()),
                sort.options.descending,
                sort.options.nulls_first,
            ) else {
                return Ok(SortOrderPushdownResult::Unsupported);
            };
            items.push(item);
        }
        let Some(ordering) = LexOrdering::new(order.to_vec()) else {
            return Ok(SortOrderPushdownResult::Unsupported);
        };
        let suffix = format!(" ORDER BY {}", items.join(", "));
        Ok(SortOrderPushdownResult::Exact {
            inner: Arc::new(self.extended(&suffix, Some(ordering), SortPushdown::Ordered)),
        })
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        match (self.pushdown, limit) {
            (SortPushdown::Ordered, Some(limit)) => Some(Arc::new(self.extended(
                &format!(" LIMIT {limit}"),
                None,
                SortPushdown::Closed,
            ))),
            _ => None,
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "RemoteScanExec has one child, got {}",
                children.len()
            )));
        }
        Ok(Arc::new(Self::with_splits(
            self.spec.clone(),
            self.sql.clone(),
            Arc::clone(&self.schema),
            children.swap_remove(0),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let registry = context
            .session_config()
            .get_extension::<ConnectorRegistry>()
            .ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "catalog \"{}\": this process has no connector registry",
                    self.spec.catalog
                ))
            })?;
        let mut numbers = self.splits.execute(partition, Arc::clone(&context))?;
        let statements = self.sql.clone();
        let spec = self.spec.clone();
        let schema = Arc::clone(&self.schema);
        let open = async move {
            let mut split = None;
            while let Some(batch) = numbers.next().await {
                let batch = batch?;
                if batch.num_rows() > 0 {
                    split = Some(batch.column(0).as_primitive::<UInt32Type>().value(0) as usize);
                }
            }
            let sql = split.and_then(|i| statements.get(i)).ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "RemoteScanExec partition {partition} names no split"
                ))
            })?;
            let source = registry.source(&spec.catalog, Some(spec.version)).await?;
            Ok::<_, DataFusionError>(source.query(sql, schema).await?)
        };
        let stream = futures::stream::once(open).try_flatten().boxed();
        let stream = match context.session_config().get_extension::<TaskCancellation>() {
            Some(cancellation) => cancellation.guard(stream),
            None => stream,
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// Tripped when the task that runs a plan is cancelled; a session-config extension that
/// a worker gives each task.
///
/// A worker's task is cancelled by dropping its future, which drops the plan's streams,
/// and a dropped remote read cancels its statement in the source. Ballista's shuffle
/// writer, though, drives a stage's input from a task of its own that the cancel does not
/// reach: without this token, a cancelled query's remote statement would run to its end.
#[derive(Debug, Clone, Default)]
pub struct TaskCancellation(CancellationToken);

impl TaskCancellation {
    pub fn new(token: CancellationToken) -> Self {
        Self(token)
    }

    /// `stream`, ended by an error (and dropped by its reader) once the task is
    /// cancelled.
    fn guard(&self, stream: BoxedBatches) -> BoxedBatches {
        let token = self.0.clone();
        futures::stream::unfold(Some(stream), move |stream| {
            let token = token.clone();
            async move {
                let mut stream = stream?;
                tokio::select! {
                    biased;
                    () = token.cancelled() => Some((
                        Err(DataFusionError::Execution("the query was cancelled".into())),
                        None,
                    )),
                    batch = stream.next() => batch.map(|batch| (batch, Some(stream))),
                }
            }
        })
        .boxed()
    }
}

type BoxedBatches = futures::stream::BoxStream<'static, Result<RecordBatch>>;
