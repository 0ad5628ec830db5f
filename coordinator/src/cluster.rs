//! Distributed mode: the Ballista scheduler embedded in the coordinator, and the planner
//! that sends each query either to the workers or, for catalog queries, to this process.
//!
//! ```text
//!  session ──plan──► ClusterPlanner ─┬─ reads only metastore tables ──► DistributedQueryExec
//!                                    │      (logical plan → scheduler → workers → Flight)
//!                                    └─ anything else (pg_catalog, information_schema,
//!                                       system.*, no table, non-standard functions) ──► here
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use arrow_flight::flight_service_server::FlightServiceServer;
use async_trait::async_trait;
use ballista_core::execution_plans::{DistributedExplainAnalyzeExec, DistributedQueryExec};
use ballista_core::extension::{
    SessionConfigExt, SessionStateExt, ballista_aggregate_functions, ballista_scalar_functions,
    ballista_window_functions,
};
use ballista_core::optimizer::ballista_default_optimizer_rules;
use ballista_core::serde::protobuf::job_status;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_scheduler::cluster::{BallistaCluster, JobState};
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::create_scheduler;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion::catalog::Session as CatalogSession;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use quarry_connectors::{QuarryOptions, RemoteQuery, RemoteTable};
use quarry_files::MetastoreTable;
use quarry_worker::{CatalogFlightService, ClusterSecret, QuarryLogicalCodec, QuarryPhysicalCodec};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;

use crate::engine::Engine;
use crate::{CoordinatorError, Result};

/// A worker that sent no heartbeat for this long is dead: its tasks run again elsewhere.
pub const EXECUTOR_TIMEOUT_SECONDS: u64 = 10;
/// With no worker left, running queries fail after this long (unless one joins).
pub const NO_WORKERS_GRACE_SECONDS: u64 = 20;

/// The scheduler type Quarry embeds.
pub type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// A running embedded scheduler.
#[derive(Clone)]
pub struct Cluster {
    scheduler: Scheduler,
    job_state: Arc<dyn JobState>,
    address: SocketAddr,
    secret: ClusterSecret,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts the scheduler on `listener` (its gRPC service refuses peers without the
    /// secret) and makes `engine` send queries to it.
    pub async fn start(
        engine: &Engine,
        listener: tokio::net::TcpListener,
        secret: ClusterSecret,
    ) -> Result<Self> {
        let address = listener
            .local_addr()
            .map_err(|e| CoordinatorError::Invalid(format!("scheduler listener: {e}")))?;
        let runtime = engine.runtime();
        let connectors = engine.connector_registry();
        let config = SchedulerConfig {
            bind_host: address.ip().to_string(),
            external_host: address.ip().to_string(),
            bind_port: address.port(),
            executor_timeout_seconds: EXECUTOR_TIMEOUT_SECONDS,
            expire_dead_executor_interval_seconds: 2,
            no_executors_grace_period_seconds: NO_WORKERS_GRACE_SECONDS,
            override_logical_codec: Some(Arc::new(QuarryLogicalCodec::new(Some(
                engine.metastore().clone(),
            )))),
            override_physical_codec: Some(Arc::new(QuarryPhysicalCodec::default())),
            // Sessions' `quarry.*` settings (pushdown) must be known before they are applied.
            // The registry lets the scheduler cut remote scans into splits while it plans.
            override_config_producer: Some(Arc::new(move || {
                SessionConfig::new_with_ballista()
                    .with_option_extension(QuarryOptions::default())
                    .with_extension(Arc::clone(&connectors))
            })),
            // The scheduler plans stages: it lists files, so it needs Quarry's object stores.
            override_session_builder: Some(Arc::new(move |config| {
                Ok(SessionStateBuilder::new()
                    .with_default_features()
                    .with_config(config)
                    .with_runtime_env(Arc::clone(&runtime))
                    .with_optimizer_rules(ballista_default_optimizer_rules())
                    .with_scalar_functions(ballista_scalar_functions())
                    .with_aggregate_functions(ballista_aggregate_functions())
                    .with_window_functions(ballista_window_functions())
                    .build())
            })),
            override_create_grpc_client_endpoint: Some(secret.endpoint_override()),
            ..Default::default()
        };
        let config = Arc::new(config);
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| CoordinatorError::Invalid(format!("cannot start the scheduler: {e}")))?;
        let job_state = cluster.job_state();
        let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
            .await
            .map_err(|e| CoordinatorError::Invalid(format!("cannot start the scheduler: {e}")))?;

        let service = InterceptedService::new(
            SchedulerGrpcServer::new(scheduler.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            secret.interceptor(),
        );
        // Workers fetch connector catalogs' definitions here, behind the same secret.
        let catalogs = InterceptedService::new(
            FlightServiceServer::new(CatalogFlightService::new(engine.catalog_resolver())),
            secret.interceptor(),
        );
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        tokio::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .add_service(catalogs)
                .serve_with_incoming(incoming)
                .await
            {
                tracing::error!(error = %e, "the scheduler's gRPC service stopped");
            }
        });

        let cluster = Self {
            scheduler,
            job_state,
            address,
            secret,
        };
        engine.attach_cluster(cluster.clone())?;
        Ok(cluster)
    }

    /// Starts `count` workers in this process (each with `slots` task slots, its work
    /// directory under `work_dir`, and the buckets of `s3`) and waits up to 30 s until
    /// they have joined. For tests and benchmarks on one machine: in-process workers share
    /// the process's fate.
    pub async fn start_local_workers(
        &self,
        count: usize,
        slots: usize,
        work_dir: &std::path::Path,
        s3: &quarry_files::S3Config,
    ) -> Result<()> {
        for i in 0..count {
            tokio::spawn(quarry_worker::run_worker(quarry_worker::WorkerOptions {
                coordinator_host: self.address.ip().to_string(),
                coordinator_port: self.address.port(),
                listen: self.address.ip(),
                work_dir: work_dir.join(format!("worker-{i}")),
                memory_limit: None,
                slots,
                s3: s3.clone(),
                secret: self.secret.clone(),
            }));
        }
        let manager = &self.scheduler.state.executor_manager;
        for _ in 0..300 {
            if manager.get_executors_state().await.map_or(0, |s| s.len()) >= count {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(CoordinatorError::Invalid(format!(
            "{count} in-process workers did not join within 30 s"
        )))
    }

    /// The scheduler's address, which workers join.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Jobs' execution graphs, finished ones included.
    pub fn job_state(&self) -> &Arc<dyn JobState> {
        &self.job_state
    }

    /// Cancels the scheduler's jobs of a Quarry query (its id names them), stopping their
    /// tasks on every worker. The job may still be on its way to the scheduler, so this
    /// looks for it for a few seconds.
    pub async fn cancel_query(&self, query_id: &str) {
        for _ in 0..50 {
            let jobs = self
                .scheduler
                .state
                .task_manager
                .get_all_jobs()
                .await
                .unwrap_or_default();
            let mine: Vec<_> = jobs
                .into_iter()
                .filter(|job| {
                    job.job_name == query_id
                        && matches!(
                            job.status.status,
                            Some(job_status::Status::Queued(_) | job_status::Status::Running(_))
                        )
                })
                .collect();
            if !mine.is_empty() {
                for job in mine {
                    if let Err(e) = self.scheduler.cancel_job(job.job_id.clone()).await {
                        tracing::warn!(query_id, error = %e, "cannot cancel a job");
                    }
                }
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Turns a session's state into one whose queries go to the cluster.
    pub(crate) fn upgrade(&self, state: SessionState) -> Result<SessionState> {
        let codec: Arc<dyn LogicalExtensionCodec> = Arc::new(QuarryLogicalCodec::new(None));
        let planner = ClusterPlanner {
            scheduler_url: self.url(),
            codec: Arc::clone(&codec),
            local: DefaultPhysicalPlanner::default(),
        };
        // Ballista's settings first (they switch off what cannot cross stages, such as
        // dynamic filters); the setters below would otherwise mark the config as done.
        let config = state
            .config()
            .clone()
            .upgrade_for_ballista()
            .with_ballista_logical_extension_codec(codec)
            .with_ballista_physical_extension_codec(Arc::new(QuarryPhysicalCodec::default()))
            .with_ballista_query_planner(Arc::new(planner))
            .with_ballista_override_create_grpc_client_endpoint(self.secret.endpoint_override())
            // Ballista's adaptive planner loses work when a worker dies (issue 3).
            .with_ballista_adaptive_query_planner(false)
            // Hash joins, as DataFusion plans them in one process: Ballista prefers
            // sort-merge joins, which spill, but they made TPC-H SF 1 2.3 times slower on
            // two workers (benches/RESULTS.md). A hash join that runs out of a worker's
            // memory costs a retry with sort-merge joins (`Session::retried_once`).
            .set_bool("datafusion.optimizer.prefer_hash_join", true);
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .build()
            .upgrade_for_ballista(self.url())?)
    }
}

/// Plans queries over metastore tables for the cluster and everything else locally.
struct ClusterPlanner {
    scheduler_url: String,
    codec: Arc<dyn LogicalExtensionCodec>,
    local: DefaultPhysicalPlanner,
}

impl std::fmt::Debug for ClusterPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPlanner")
            .field("scheduler_url", &self.scheduler_url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn CatalogSession,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if !runs_on_cluster(plan)? {
            return self.local.create_physical_plan(plan, session).await;
        }
        let config = session.config().ballista_config();
        let distributed = |plan: LogicalPlan| {
            Arc::new(DistributedQueryExec::<LogicalPlanNode>::with_extension(
                self.scheduler_url.clone(),
                config.clone(),
                plan,
                Arc::clone(&self.codec),
                session.session_id().to_string(),
            ))
        };
        Ok(match plan {
            LogicalPlan::Analyze(analyze) => Arc::new(DistributedExplainAnalyzeExec::new(
                distributed(analyze.input.as_ref().clone()),
                self.scheduler_url.clone(),
                Arc::clone(analyze.schema.inner()),
                analyze.verbose,
            )),
            // EXPLAIN shows the plan as planned here; EXPLAIN ANALYZE the stages that ran.
            LogicalPlan::Explain(_) => self.local.create_physical_plan(plan, session).await?,
            _ => distributed(plan.clone()),
        })
    }
}

/// Whether `plan` should run on the workers: it reads at least one table, every table it
/// reads is a metastore table (catalog tables live only in this process), and it calls
/// only functions every worker has.
pub fn runs_on_cluster(plan: &LogicalPlan) -> datafusion::error::Result<bool> {
    let (mut data, mut local_only) = (false, false);
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                let provider = source_as_provider(&scan.source)?;
                if provider.downcast_ref::<MetastoreTable>().is_some()
                    || provider.downcast_ref::<RemoteTable>().is_some()
                    || provider.downcast_ref::<RemoteQuery>().is_some()
                {
                    data = true;
                } else {
                    local_only = true;
                }
            }
            LogicalPlan::Dml(_) | LogicalPlan::Copy(_) | LogicalPlan::Extension(_) => {
                local_only = true;
            }
            _ => {}
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Some(name) = function_name(e)
                    && !STANDARD_FUNCTIONS.contains(name)
                {
                    local_only = true;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if local_only {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(data && !local_only)
}

fn function_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::ScalarFunction(f) => Some(f.name()),
        Expr::AggregateFunction(f) => Some(f.func.name()),
        Expr::WindowFunction(f) => Some(f.fun.name()),
        _ => None,
    }
}

/// Functions the scheduler and workers know: DataFusion's and Ballista's. Functions only
/// this process has (pg_catalog's `current_schema()`, ...) keep a query here.
static STANDARD_FUNCTIONS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_scalar_functions(ballista_scalar_functions())
        .with_aggregate_functions(ballista_aggregate_functions())
        .with_window_functions(ballista_window_functions())
        .build();
    let mut names: HashSet<String> = HashSet::new();
    for (name, f) in state.scalar_functions() {
        names.insert(name.clone());
        names.extend(f.aliases().iter().cloned());
    }
    for (name, f) in state.aggregate_functions() {
        names.insert(name.clone());
        names.extend(f.aliases().iter().cloned());
    }
    for (name, f) in state.window_functions() {
        names.insert(name.clone());
        names.extend(f.aliases().iter().cloned());
    }
    names
});
