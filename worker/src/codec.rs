//! Quarry's plan codecs. They wrap Ballista's codecs and hand them everything that is not
//! Quarry's own, so shuffles, file formats and functions keep serializing.
//!
//! ```text
//!  logical plan ──► QuarryLogicalCodec ──► bytes ──► scheduler (rebuilds MetastoreTable
//!                      │ MetastoreTable: tag + table JSON        from the JSON + its metastore)
//!                      └ anything else: BallistaLogicalExtensionCodec
//!  physical stage ─► QuarryPhysicalCodec ─► bytes ──► worker
//!                      │ MetastoreScanExec: tag + JSON (its DataSourceExec child serializes itself)
//!                      └ anything else: BallistaPhysicalExtensionCodec
//! ```
//! Plans carry table definitions only: never credentials (those stay in each process's
//! object-store registry).

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{TableReference, exec_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    AggregateUDF, Extension, HigherOrderUDF, LogicalPlan, ScalarUDF, WindowUDF,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use quarry_connectors::{
    RemoteQuery, RemoteScanExec, RemoteTable, RemoteTableSpec, schema_from_bytes, schema_to_bytes,
};
use quarry_files::{MetastoreScanExec, MetastoreTable, restore_schema_rules};
use quarry_metastore::{Metastore, Table};
use serde::{Deserialize, Serialize};

/// Prefix of an encoded [`MetastoreTable`].
const METASTORE_TABLE_TAG: &[u8] = b"quarry.metastore_table.v1:";
/// Prefix of an encoded [`RemoteTable`].
const REMOTE_TABLE_TAG: &[u8] = b"quarry.remote_table.v1:";
/// Prefix of an encoded [`RemoteQuery`] (a pushed join or aggregate).
const REMOTE_QUERY_TAG: &[u8] = b"quarry.remote_query.v1:";
/// Prefix of an encoded [`RemoteScanExec`].
const REMOTE_SCAN_TAG: &[u8] = b"quarry.remote_scan.v1:";
/// Prefix of an encoded [`MetastoreScanExec`].
const METASTORE_SCAN_TAG: &[u8] = b"quarry.metastore_scan.v2:";

fn corrupt(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("cannot decode {what}: {e}"))
}

/// The function hooks both codec traits share: Quarry has no functions of its own to
/// encode, so they all go to Ballista's codec.
macro_rules! forward_function_codecs {
    () => {
        fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
            self.inner.try_decode_udf(name, buf)
        }

        fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udf(node, buf)
        }

        fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
            self.inner.try_decode_udaf(name, buf)
        }

        fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udaf(node, buf)
        }

        fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
            self.inner.try_decode_udwf(name, buf)
        }

        fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udwf(node, buf)
        }

        fn try_decode_higher_order_function(
            &self,
            name: &str,
            buf: &[u8],
        ) -> Result<Arc<HigherOrderUDF>> {
            self.inner.try_decode_higher_order_function(name, buf)
        }

        fn try_encode_higher_order_function(
            &self,
            node: &HigherOrderUDF,
            buf: &mut Vec<u8>,
        ) -> Result<()> {
            self.inner.try_encode_higher_order_function(node, buf)
        }
    };
}

/// Logical codec: metastore tables travel as their definition and are rebuilt over the
/// decoding process's metastore (the scheduler's, in the coordinator).
#[derive(Debug)]
pub struct QuarryLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
    metastore: Option<Metastore>,
}

impl QuarryLogicalCodec {
    /// `metastore` is needed where logical plans are decoded (the scheduler); workers
    /// decode only physical plans and pass `None`.
    pub fn new(metastore: Option<Metastore>) -> Self {
        Self {
            inner: BallistaLogicalExtensionCodec::default(),
            metastore,
        }
    }
}

impl LogicalExtensionCodec for QuarryLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(json) = buf.strip_prefix(REMOTE_TABLE_TAG) {
            let fields: RemoteFields =
                serde_json::from_slice(json).map_err(|e| corrupt("a remote table", e))?;
            let schema = fields.schema()?;
            return Ok(Arc::new(RemoteTable::new(fields.spec, schema)));
        }
        if let Some(json) = buf.strip_prefix(REMOTE_QUERY_TAG) {
            let fields: RemoteFields =
                serde_json::from_slice(json).map_err(|e| corrupt("a remote query", e))?;
            let schema = fields.schema()?;
            let [sql] = <[String; 1]>::try_from(fields.sql)
                .map_err(|_| corrupt("a remote query", "not one statement"))?;
            return Ok(Arc::new(RemoteQuery::new(fields.spec, sql, schema)));
        }
        let Some(json) = buf.strip_prefix(METASTORE_TABLE_TAG) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let table: Table =
            serde_json::from_slice(json).map_err(|e| corrupt("a metastore table", e))?;
        let Some(metastore) = &self.metastore else {
            return exec_err!(
                "table {table_ref} needs the metastore, which this process does not have"
            );
        };
        Ok(Arc::new(MetastoreTable::try_new(table, metastore.clone())?))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(table) = node.downcast_ref::<RemoteTable>() {
            let fields = RemoteFields::new(table.spec().clone(), vec![], &table.schema())?;
            buf.extend_from_slice(REMOTE_TABLE_TAG);
            return serde_json::to_writer(buf, &fields).map_err(|e| corrupt("a remote table", e));
        }
        if let Some(query) = node.downcast_ref::<RemoteQuery>() {
            let fields = RemoteFields::new(
                query.spec().clone(),
                vec![query.sql().to_string()],
                &query.schema(),
            )?;
            buf.extend_from_slice(REMOTE_QUERY_TAG);
            return serde_json::to_writer(buf, &fields).map_err(|e| corrupt("a remote query", e));
        }
        match node.downcast_ref::<MetastoreTable>() {
            Some(table) => {
                buf.extend_from_slice(METASTORE_TABLE_TAG);
                serde_json::to_writer(buf, table.table())
                    .map_err(|e| corrupt("a metastore table", e))
            }
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    forward_function_codecs!();
}

/// The fields of a [`MetastoreScanExec`]; its child travels as a plan of its own.
#[derive(Serialize, Deserialize)]
struct ScanFields {
    table: String,
    partitions: Option<(usize, usize)>,
}

/// A remote table or scan: which table, the statements of a scan, and the schema (with the
/// source types in its metadata, which pushdown decisions read).
#[derive(Serialize, Deserialize)]
struct RemoteFields {
    spec: RemoteTableSpec,
    sql: Vec<String>,
    schema: String,
}

impl RemoteFields {
    fn new(
        spec: RemoteTableSpec,
        sql: Vec<String>,
        schema: &datafusion::arrow::datatypes::Schema,
    ) -> Result<Self> {
        Ok(Self {
            spec,
            sql,
            schema: hex::encode(schema_to_bytes(schema)?),
        })
    }

    fn schema(&self) -> Result<SchemaRef> {
        let bytes = hex::decode(&self.schema).map_err(|e| corrupt("a remote schema", e))?;
        schema_from_bytes(&bytes)
    }
}

/// Physical codec: Quarry's plan nodes, then Ballista's.
#[derive(Debug, Default)]
pub struct QuarryPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for QuarryPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(json) = buf.strip_prefix(REMOTE_SCAN_TAG) {
            let fields: RemoteFields =
                serde_json::from_slice(json).map_err(|e| corrupt("a remote scan", e))?;
            let schema = fields.schema()?;
            let [splits] = inputs else {
                return exec_err!("a remote scan has one input, got {}", inputs.len());
            };
            return Ok(Arc::new(RemoteScanExec::with_splits(
                fields.spec,
                fields.sql,
                schema,
                Arc::clone(splits),
            )));
        }
        let Some(json) = buf.strip_prefix(METASTORE_SCAN_TAG) else {
            return self.inner.try_decode(buf, inputs, ctx, proto_converter);
        };
        let fields: ScanFields =
            serde_json::from_slice(json).map_err(|e| corrupt("a metastore scan", e))?;
        let [input] = inputs else {
            return exec_err!("a metastore scan has one input, got {}", inputs.len());
        };
        let input = restore_schema_rules(&fields.table, Arc::clone(input))?;
        Ok(Arc::new(MetastoreScanExec::new(
            fields.table,
            fields.partitions,
            input,
        )))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<RemoteScanExec>() {
            let fields =
                RemoteFields::new(scan.spec().clone(), scan.sql().to_vec(), scan.schema_ref())?;
            buf.extend_from_slice(REMOTE_SCAN_TAG);
            return serde_json::to_writer(buf, &fields).map_err(|e| corrupt("a remote scan", e));
        }
        match node.downcast_ref::<MetastoreScanExec>() {
            Some(scan) => {
                let fields = ScanFields {
                    table: scan.table().to_string(),
                    partitions: scan.partitions(),
                };
                buf.extend_from_slice(METASTORE_SCAN_TAG);
                serde_json::to_writer(buf, &fields).map_err(|e| corrupt("a metastore scan", e))
            }
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }

    forward_function_codecs!();

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        self.inner.try_decode_expr(buf, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> Result<()> {
        self.inner.try_encode_expr(node, buf, ctx)
    }
}
