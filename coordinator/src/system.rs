//! Catalog `system`, schema `runtime`: what the cluster is doing, like Trino's.
//!
//! * `nodes`: the coordinator and every worker the scheduler knows.
//! * `queries`: statements of all sessions of this process (the last [`KEPT_QUERIES`]).
//! * `tasks`: the tasks of distributed queries, from the scheduler's execution graphs (one
//!   row per Ballista task, with the stage partitions it ran).
//!
//! Each table is computed when it is scanned; queries over them run on the coordinator.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ballista_core::serde::protobuf::{executor_status, task_status};
use ballista_scheduler::state::execution_graph::ExecutionGraph;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::memory::{MemorySchemaProvider, MemorySourceConfig};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, SchemaProvider, Session, TableProvider,
};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::cluster::Cluster;

/// How many finished queries `system.runtime.queries` keeps.
pub const KEPT_QUERIES: usize = 1000;

/// What the system tables read: the query log and, in distributed mode, the cluster.
#[derive(Debug, Default)]
pub struct RuntimeState {
    pub(crate) cluster: OnceLock<Cluster>,
    queries: Mutex<VecDeque<Arc<QueryRecord>>>,
    next_query: AtomicU64,
}

/// One statement, as `system.runtime.queries` shows it.
#[derive(Debug)]
pub struct QueryRecord {
    pub id: String,
    pub user: String,
    pub sql: String,
    pub started: SystemTime,
    progress: Mutex<Progress>,
}

#[derive(Debug)]
struct Progress {
    state: QueryState,
    finished: Option<SystemTime>,
    rows: u64,
    bytes: u64,
}

/// The states a query goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    Running,
    Finished,
    Failed,
    Cancelled,
}

impl QueryState {
    fn name(self) -> &'static str {
        match self {
            QueryState::Running => "RUNNING",
            QueryState::Finished => "FINISHED",
            QueryState::Failed => "FAILED",
            QueryState::Cancelled => "CANCELLED",
        }
    }
}

impl QueryRecord {
    /// Counts rows and bytes sent to the client.
    pub fn add_output(&self, rows: usize, bytes: usize) {
        let mut p = self.progress.lock().expect("query progress");
        p.rows += rows as u64;
        p.bytes += bytes as u64;
    }

    /// Ends the query, unless it already ended.
    pub fn finish(&self, state: QueryState) {
        let mut p = self.progress.lock().expect("query progress");
        if p.state == QueryState::Running {
            p.state = state;
            p.finished = Some(SystemTime::now());
        }
    }

    pub fn state(&self) -> QueryState {
        self.progress.lock().expect("query progress").state
    }
}

impl RuntimeState {
    /// Records a new statement and returns its record; its id looks like Trino's
    /// (`20261125_210300_00001_quarry`).
    pub fn start_query(&self, user: &str, sql: &str) -> Arc<QueryRecord> {
        let n = self.next_query.fetch_add(1, Ordering::Relaxed) + 1;
        let now = chrono::Utc::now();
        let record = Arc::new(QueryRecord {
            id: format!("{}_{n:05}_quarry", now.format("%Y%m%d_%H%M%S")),
            user: user.to_string(),
            sql: sql.to_string(),
            started: SystemTime::now(),
            progress: Mutex::new(Progress {
                state: QueryState::Running,
                finished: None,
                rows: 0,
                bytes: 0,
            }),
        });
        let mut queries = self.queries.lock().expect("query log");
        if queries.len() >= KEPT_QUERIES {
            // Drop the oldest finished query; running ones stay visible.
            if let Some(i) = queries
                .iter()
                .position(|q| q.state() != QueryState::Running)
            {
                queries.remove(i);
            }
        }
        queries.push_back(Arc::clone(&record));
        record
    }

    fn queries(&self) -> Vec<Arc<QueryRecord>> {
        self.queries
            .lock()
            .expect("query log")
            .iter()
            .cloned()
            .collect()
    }
}

/// The `system` catalog over `state`.
pub fn system_catalog(state: &Arc<RuntimeState>) -> Arc<dyn CatalogProvider> {
    let runtime = MemorySchemaProvider::new();
    for kind in [SystemKind::Nodes, SystemKind::Queries, SystemKind::Tasks] {
        let table = Arc::new(SystemTable {
            kind,
            state: Arc::clone(state),
        });
        runtime
            .register_table(kind.name().to_string(), table)
            .expect("distinct system table names");
    }
    let catalog = MemoryCatalogProvider::new();
    catalog
        .register_schema("runtime", Arc::new(runtime))
        .expect("a new catalog");
    Arc::new(catalog)
}

#[derive(Debug, Clone, Copy)]
enum SystemKind {
    Nodes,
    Queries,
    Tasks,
}

impl SystemKind {
    fn name(self) -> &'static str {
        match self {
            SystemKind::Nodes => "nodes",
            SystemKind::Queries => "queries",
            SystemKind::Tasks => "tasks",
        }
    }

    fn schema(self) -> SchemaRef {
        let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let fields = match self {
            SystemKind::Nodes => vec![
                Field::new("node_id", DataType::Utf8, false),
                Field::new("address", DataType::Utf8, false),
                Field::new("coordinator", DataType::Boolean, false),
                Field::new("state", DataType::Utf8, false),
                Field::new("slots", DataType::Int64, true),
                Field::new("memory_bytes", DataType::Int64, true),
                Field::new("last_heartbeat", ts(), true),
            ],
            SystemKind::Queries => vec![
                Field::new("query_id", DataType::Utf8, false),
                Field::new("user", DataType::Utf8, false),
                Field::new("state", DataType::Utf8, false),
                Field::new("query", DataType::Utf8, false),
                Field::new("started", ts(), false),
                Field::new("elapsed_ms", DataType::Int64, false),
                Field::new("rows", DataType::Int64, false),
                Field::new("bytes", DataType::Int64, false),
            ],
            SystemKind::Tasks => vec![
                Field::new("query_id", DataType::Utf8, false),
                Field::new("job_id", DataType::Utf8, false),
                Field::new("stage", DataType::Int64, false),
                Field::new("task", DataType::Int64, false),
                Field::new("partitions", DataType::Utf8, false),
                Field::new("worker", DataType::Utf8, true),
                Field::new("state", DataType::Utf8, false),
                Field::new("rows", DataType::Int64, true),
                Field::new("elapsed_ms", DataType::Int64, true),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

#[derive(Debug)]
struct SystemTable {
    kind: SystemKind,
    state: Arc<RuntimeState>,
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.kind.schema()
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
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.schema();
        let columns = match self.kind {
            SystemKind::Nodes => nodes(&self.state).await,
            SystemKind::Queries => queries(&self.state),
            SystemKind::Tasks => tasks(&self.state).await,
        };
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            projection.cloned(),
        )?)
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

fn strings(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn optional_strings(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn ints(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(values))
}

fn timestamps(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
}

async fn nodes(state: &RuntimeState) -> Vec<ArrayRef> {
    let (mut id, mut address, mut coordinator, mut status) = (vec![], vec![], vec![], vec![]);
    let (mut slots, mut memory, mut heartbeat) = (vec![], vec![], vec![]);
    id.push("coordinator".to_string());
    address.push(
        state
            .cluster
            .get()
            .map(|c| c.address().to_string())
            .unwrap_or_else(|| "local".into()),
    );
    coordinator.push(true);
    status.push("active".to_string());
    slots.push(None);
    memory.push(None);
    heartbeat.push(Some(millis(SystemTime::now())));
    if let Some(cluster) = state.cluster.get() {
        let manager = &cluster.scheduler().state.executor_manager;
        for (meta, beat, _) in manager.get_executors_state().await.unwrap_or_default() {
            let last = manager.get_executor_hearbeat(&meta.id);
            let worker_state = match last
                .as_ref()
                .and_then(|hb| hb.status.as_ref())
                .and_then(|s| s.status.as_ref())
            {
                Some(executor_status::Status::Active(_)) => "active",
                Some(executor_status::Status::Terminating(_)) => "shutting_down",
                Some(executor_status::Status::Dead(_)) => "dead",
                _ => "unknown",
            };
            id.push(meta.id.clone());
            address.push(format!("{}:{}", meta.host, meta.port));
            coordinator.push(false);
            status.push(worker_state.to_string());
            slots.push(Some(i64::from(meta.specification.vcores)));
            memory.push(last.map(|hb| hb.peak_proc_physical_memory as i64));
            heartbeat.push(beat.map(|d: Duration| d.as_millis() as i64));
        }
    }
    vec![
        strings(id),
        strings(address),
        Arc::new(BooleanArray::from(coordinator)),
        strings(status),
        ints(slots),
        ints(memory),
        timestamps(heartbeat),
    ]
}

fn queries(state: &RuntimeState) -> Vec<ArrayRef> {
    let records = state.queries();
    let now = SystemTime::now();
    let progress: Vec<_> = records
        .iter()
        .map(|q| {
            let p = q.progress.lock().expect("query progress");
            let end = p.finished.unwrap_or(now);
            let elapsed = end.duration_since(q.started).unwrap_or_default();
            (
                p.state,
                elapsed.as_millis() as i64,
                p.rows as i64,
                p.bytes as i64,
            )
        })
        .collect();
    vec![
        strings(records.iter().map(|q| q.id.clone()).collect()),
        strings(records.iter().map(|q| q.user.clone()).collect()),
        strings(progress.iter().map(|p| p.0.name().to_string()).collect()),
        strings(records.iter().map(|q| q.sql.clone()).collect()),
        timestamps(records.iter().map(|q| Some(millis(q.started))).collect()),
        ints(progress.iter().map(|p| Some(p.1)).collect()),
        ints(progress.iter().map(|p| Some(p.2)).collect()),
        ints(progress.iter().map(|p| Some(p.3)).collect()),
    ]
}

/// One row of `system.runtime.tasks`.
struct TaskRow {
    query: String,
    job: String,
    stage: i64,
    task: i64,
    partitions: String,
    worker: Option<String>,
    state: &'static str,
    rows: Option<i64>,
    elapsed_ms: Option<i64>,
}

async fn tasks(state: &RuntimeState) -> Vec<ArrayRef> {
    let mut rows: Vec<TaskRow> = vec![];
    if let Some(cluster) = state.cluster.get() {
        let manager = &cluster.scheduler().state.task_manager;
        let jobs = manager.get_all_jobs().await.unwrap_or_default();
        let running = manager.get_running_job_cache();
        let job_state = cluster.job_state();
        for job in jobs {
            if let Some(cached) = running.get(&job.job_id) {
                let graph = cached.execution_graph.read().await;
                task_rows(&job.job_name, graph.as_ref(), &mut rows);
            } else if let Ok(Some(graph)) = job_state.get_execution_graph(&job.job_id).await {
                task_rows(&job.job_name, graph.as_ref(), &mut rows);
            }
        }
    }
    vec![
        strings(rows.iter().map(|r| r.query.clone()).collect()),
        strings(rows.iter().map(|r| r.job.clone()).collect()),
        ints(rows.iter().map(|r| Some(r.stage)).collect()),
        ints(rows.iter().map(|r| Some(r.task)).collect()),
        strings(rows.iter().map(|r| r.partitions.clone()).collect()),
        optional_strings(rows.iter().map(|r| r.worker.clone()).collect()),
        strings(rows.iter().map(|r| r.state.to_string()).collect()),
        ints(rows.iter().map(|r| r.rows).collect()),
        ints(rows.iter().map(|r| r.elapsed_ms).collect()),
    ]
}

/// The tasks of one job's execution graph. A Ballista task may run several partitions of
/// its stage (one per slot it got); `partitions` lists them.
fn task_rows(query: &str, graph: &(dyn ExecutionGraph + Send + Sync), rows: &mut Vec<TaskRow>) {
    let job = graph.job_id().to_string();
    let mut stages: Vec<_> = graph.stages().iter().collect();
    stages.sort_by_key(|(id, _)| **id);
    for (stage_id, stage) in stages {
        for info in stage.task_infos().unwrap_or_default() {
            let (worker, state, output) = match &info.task_status {
                task_status::Status::Running(r) => (Some(r.executor_id.clone()), "running", None),
                task_status::Status::Successful(s) => (
                    Some(s.executor_id.clone()),
                    "finished",
                    Some(s.partitions.iter().map(|p| p.num_rows as i64).sum()),
                ),
                task_status::Status::Failed(_) => (None, "failed", None),
            };
            let end = if info.end_exec_time > 0 {
                info.end_exec_time
            } else {
                millis(SystemTime::now()) as u128
            };
            let elapsed =
                (info.start_exec_time > 0).then(|| end.saturating_sub(info.start_exec_time) as i64);
            let partitions: Vec<String> = info
                .global_input_partition_ids
                .iter()
                .map(|p| p.to_string())
                .collect();
            rows.push(TaskRow {
                query: query.to_string(),
                job: job.clone(),
                stage: *stage_id as i64,
                task: info.task_id as i64,
                partitions: partitions.join(","),
                worker,
                state,
                rows: output,
                elapsed_ms: elapsed,
            });
        }
    }
}
