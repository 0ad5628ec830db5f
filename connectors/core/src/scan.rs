//! [`RemoteScanExec`]: the leaf that reads a remote table. Plain data, so it travels to
//! workers; the connection comes from the executing process's [`ConnectorRegistry`].

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::tree_node::TreeNodeRecursion;
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

/// Reads one remote SELECT per partition (one per split of the table).
#[derive(Debug)]
pub struct RemoteScanExec {
    spec: RemoteTableSpec,
    /// The statement each partition sends, in the source's dialect.
    sql: Vec<String>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RemoteScanExec {
    pub fn new(spec: RemoteTableSpec, sql: Vec<String>, schema: SchemaRef) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(sql.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            spec,
            sql,
            schema,
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
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "RemoteScanExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let sql = self.sql.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!(
                "RemoteScanExec has {} partitions, asked for {partition}",
                self.sql.len()
            ))
        })?;
        let registry = context
            .session_config()
            .get_extension::<ConnectorRegistry>()
            .ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "catalog \"{}\": this process has no connector registry",
                    self.spec.catalog
                ))
            })?;
        let spec = self.spec.clone();
        let schema = Arc::clone(&self.schema);
        let open = async move {
            let source = registry.source(&spec.catalog, Some(spec.version)).await?;
            Ok::<_, DataFusionError>(source.query(&sql, schema).await?)
        };
        let stream = futures::stream::once(open).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream.boxed(),
        )))
    }
}
