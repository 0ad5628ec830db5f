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
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};

use crate::{ConnectorRegistry, RemoteTableSpec};

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
        let mut numbers = self.splits.execute(partition, context)?;
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
        let stream = futures::stream::once(open).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream.boxed(),
        )))
    }
}
