//! The worker's execution engine: Ballista's own, with each task's cancellation reaching
//! the scans of the task.
//!
//! Ballista cancels a task by dropping its future. The stage's shuffle writer, though,
//! drives its input from a task of its own, which that drop does not reach: a cancelled
//! query's scans would run to their end, and a remote statement with them. Each task here
//! gets a cancellation token, tripped when its future is dropped before it finished: remote
//! scans find it in the session config ([`TaskCancellation`]) and end, which cancels their
//! statements; Parquet scans read through readers that fail once it is tripped, other file
//! scans through object stores that do ([`CancellableStores`]).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballista_core::JobId;
use ballista_core::client::BallistaClient;
use ballista_core::client_pool::{BallistaClientPool, PooledClient};
use ballista_core::extension::BallistaConfigGrpcEndpoint;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport,
};
use ballista_core::utils::GrpcClientConfig;
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use bytes::Bytes;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::parquet;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::SessionConfig;
use datafusion_datasource_parquet::ParquetFileReaderFactory;
use datafusion_datasource_parquet::source::ParquetSource;
use futures::FutureExt;
use futures::future::BoxFuture;
use quarry_connectors::TaskCancellation;
use tokio_util::sync::CancellationToken;

use crate::cancel_store::CancellableStores;

/// Ballista's default engine (shuffle reads through pooled Flight clients) whose tasks
/// carry a [`TaskCancellation`].
pub struct CancellableEngine {
    inner: DefaultExecutionEngine,
}

impl CancellableEngine {
    /// Idle Flight clients are kept `client_ttl` (Ballista's default: 30 s).
    pub fn new(client_ttl: Duration) -> Self {
        Self {
            inner: DefaultExecutionEngine::with_client_pool(Arc::new(ClientPool::new(client_ttl))),
        }
    }
}

impl ExecutionEngine for CancellableEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        let cancelled = CancellationToken::new();
        let plan = watch_parquet_reads(plan, &cancelled)?;
        let inner = self.inner.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(CancellableStage { inner, cancelled }))
    }
}

#[derive(Debug)]
struct CancellableStage {
    inner: Arc<dyn QueryStageExecutor>,
    /// Tripped when the task's future is dropped unfinished.
    cancelled: CancellationToken,
}

impl fmt::Display for CancellableStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for CancellableStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        let token = self.cancelled.clone();
        // Dropped with this future when the task is cancelled; disarmed when it ends.
        let cancel_on_drop = token.clone().drop_guard();
        let runtime = context.runtime_env();
        let runtime = RuntimeEnvBuilder::from_runtime_env(&runtime)
            .with_object_store_registry(Arc::new(CancellableStores::new(
                Arc::clone(&runtime.object_store_registry),
                token.clone(),
            )))
            .build_arc()?;
        let config = context
            .session_config()
            .clone()
            .with_extension(Arc::new(TaskCancellation::new(token)));
        let context = Arc::new(TaskContext::new(
            context.task_id(),
            context.session_id(),
            config,
            context.scalar_functions().clone(),
            context.higher_order_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            runtime,
        ));
        let written = self.inner.execute_query_stage(task_id, context).await;
        cancel_on_drop.disarm();
        written
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        self.inner.collect_plan_metrics()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.inner.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> Result<Vec<WindowStateReport>> {
        self.inner.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.inner.collect_column_stats()
    }
}

/// `plan` with each Parquet scan reading through readers that fail once `cancelled` is
/// tripped. The scan's reader factory holds the object store of the context that planned
/// or decoded the plan, so a task's own object stores would not reach it.
fn watch_parquet_reads(
    plan: Arc<dyn ExecutionPlan>,
    cancelled: &CancellationToken,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|scan| scan.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Ok(Transformed::no(node));
        };
        let Some((parquet, readers)) = config
            .file_source()
            .downcast_ref::<ParquetSource>()
            .and_then(|p| Some((p, p.parquet_file_reader_factory()?)))
        else {
            return Ok(Transformed::no(node));
        };
        let source =
            parquet
                .clone()
                .with_parquet_file_reader_factory(Arc::new(CancellableReaders {
                    inner: Arc::clone(readers),
                    cancelled: cancelled.clone(),
                }));
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build();
        Ok(Transformed::yes(
            DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
        ))
    })
    .data()
}

/// Parquet readers that fail every read once their task is cancelled.
#[derive(Debug)]
struct CancellableReaders {
    inner: Arc<dyn ParquetFileReaderFactory>,
    cancelled: CancellationToken,
}

impl ParquetFileReaderFactory for CancellableReaders {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        Ok(Box::new(CancellableReader {
            inner: self.inner.create_reader(
                partition_index,
                partitioned_file,
                metadata_size_hint,
                metrics,
            )?,
            cancelled: self.cancelled.clone(),
        }))
    }
}

struct CancellableReader {
    inner: Box<dyn AsyncFileReader + Send>,
    cancelled: CancellationToken,
}

impl CancellableReader {
    fn go_on(&self) -> parquet::errors::Result<()> {
        if self.cancelled.is_cancelled() {
            Err(ParquetError::External("the query was cancelled".into()))
        } else {
            Ok(())
        }
    }
}

impl AsyncFileReader for CancellableReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        match self.go_on() {
            Ok(()) => self.inner.get_bytes(range),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        match self.go_on() {
            Ok(()) => self.inner.get_byte_ranges(ranges),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        match self.go_on() {
            Ok(()) => self.inner.get_metadata(options),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }
}

/// Flight clients to other workers, kept for reuse while idle for less than a TTL.
///
/// Ballista's executor has such a pool but keeps it private, and an engine that wraps
/// the default one must bring its own.
#[derive(Clone)]
struct ClientPool {
    idle: Arc<Mutex<IdleClients>>,
    ttl: Duration,
}

type ClientKey = (String, u16, GrpcClientConfig);

/// Per endpoint, the clients returned to the pool and since when.
type IdleClients = HashMap<ClientKey, Vec<(BallistaClient, Instant)>>;

impl ClientPool {
    fn new(ttl: Duration) -> Self {
        Self {
            idle: Arc::default(),
            ttl,
        }
    }

    /// The most recently returned live client for `key`, forgetting expired ones.
    fn take_idle(&self, key: &ClientKey) -> Option<BallistaClient> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        forget_expired(&mut idle, self.ttl);
        idle.get_mut(key)?.pop().map(|(client, _)| client)
    }
}

fn forget_expired(idle: &mut IdleClients, ttl: Duration) {
    idle.retain(|_, clients| {
        clients.retain(|(_, since)| since.elapsed() < ttl);
        !clients.is_empty()
    });
}

impl fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPool")
            .field("ttl", &self.ttl)
            .finish()
    }
}

#[async_trait::async_trait]
impl BallistaClientPool for ClientPool {
    async fn acquire(
        &self,
        host: &str,
        port: u16,
        config: &GrpcClientConfig,
        customize_endpoint: Option<Arc<BallistaConfigGrpcEndpoint>>,
    ) -> ballista_core::error::Result<PooledClient> {
        let key = (host.to_string(), port, config.clone());
        let client = match self.take_idle(&key) {
            Some(client) => client,
            None => {
                BallistaClient::try_new(
                    host,
                    port,
                    config.max_message_size,
                    config.use_tls,
                    customize_endpoint,
                    config.io_retries_times,
                    config.io_retry_wait_time_ms,
                    config.initial_connection_window_size,
                    config.initial_stream_window_size,
                )
                .await?
            }
        };
        let idle = Arc::clone(&self.idle);
        Ok(PooledClient::new(
            client,
            Box::new(move |client| {
                let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.entry(key).or_default().push((client, Instant::now()));
            }),
        ))
    }

    async fn evict_idle(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        forget_expired(&mut idle, self.ttl);
    }
}

#[cfg(test)]
mod tests {
    use datafusion::dataframe::DataFrameWriteOptions;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    use tokio_util::sync::CancellationToken;

    use super::watch_parquet_reads;

    #[tokio::test]
    async fn parquet_scans_fail_once_their_task_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let ctx = SessionContext::new();
        ctx.sql("SELECT * FROM (VALUES (1), (2)) AS t(a)")
            .await
            .unwrap()
            .write_parquet(path.to_str().unwrap(), DataFrameWriteOptions::new(), None)
            .await
            .unwrap();
        // A plan runs once (its scan hands out files from a shared queue): one plan per run.
        let watched = async |cancelled: &CancellationToken| {
            let plan = ctx
                .read_parquet(path.to_str().unwrap(), ParquetReadOptions::default())
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let plan = watch_parquet_reads(plan, cancelled).unwrap();
            collect(plan, ctx.task_ctx()).await
        };
        let running = CancellationToken::new();
        let rows: usize = watched(&running)
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 2);
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        let error = watched(&cancelled).await.unwrap_err();
        assert!(
            error.to_string().contains("the query was cancelled"),
            "{error}"
        );
    }
}
