//! Catalog `system`, schema `runtime`: what the cluster is doing, like Trino's.
//!
//! * `nodes`: the coordinator and every worker the scheduler knows.
//! * `queries`: statements of all sessions of this process (the last [`KEPT_QUERIES`]).
//! * `tasks`: the tasks of distributed queries, from the scheduler's execution graphs (one
//!   row per Ballista task, with the stage partitions it ran).
//! * `stages`: the stages of distributed queries: when they ran, and where their tasks'
//!   time went (operators' compute, reading and writing shuffle data), from the metrics
//!   the workers report with each finished task.
//!
//! Each table is computed when it is scanned; queries over them run on the coordinator.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ballista_core::serde::protobuf::{executor_status, task_status};
use ballista_scheduler::state::execution_graph::ExecutionGraph;
use ballista_scheduler::state::execution_stage::{ExecutionStage, TaskInfo};
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
use datafusion::physical_plan::metrics::MetricsSet;

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
    for kind in [
        SystemKind::Nodes,
        SystemKind::Queries,
        SystemKind::Tasks,
        SystemKind::Stages,
    ] {
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
    Stages,
}

impl SystemKind {
    fn name(self) -> &'static str {
        match self {
            SystemKind::Nodes => "nodes",
            SystemKind::Queries => "queries",
            SystemKind::Tasks => "tasks",
            SystemKind::Stages => "stages",
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
            SystemKind::Stages => vec![
                Field::new("query_id", DataType::Utf8, false),
                Field::new("job_id", DataType::Utf8, false),
                Field::new("stage", DataType::Int64, false),
                Field::new("state", DataType::Utf8, false),
                Field::new("tasks", DataType::Int64, false),
                Field::new("scheduled", ts(), true),
                Field::new("finished", ts(), true),
                Field::new("elapsed_ms", DataType::Int64, true),
                Field::new("launch_ms", DataType::Int64, true),
                Field::new("task_ms", DataType::Int64, true),
                Field::new("scan_ms", DataType::Int64, true),
                Field::new("compute_ms", DataType::Int64, true),
                Field::new("shuffle_read_ms", DataType::Int64, true),
                Field::new("shuffle_write_ms", DataType::Int64, true),
                Field::new("rows", DataType::Int64, true),
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
            SystemKind::Stages => stages(&self.state).await,
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

/// Calls `visit` with the Quarry query id and execution graph of every job the scheduler
/// knows, running or done.
async fn visit_jobs(
    state: &RuntimeState,
    mut visit: impl FnMut(&str, &(dyn ExecutionGraph + Send + Sync)),
) {
    let Some(cluster) = state.cluster.get() else {
        return;
    };
    let manager = &cluster.scheduler().state.task_manager;
    let jobs = manager.get_all_jobs().await.unwrap_or_default();
    let running = manager.get_running_job_cache();
    let job_state = cluster.job_state();
    for job in jobs {
        if let Some(cached) = running.get(&job.job_id) {
            let graph = cached.execution_graph.read().await;
            visit(&job.job_name, graph.as_ref());
        } else if let Ok(Some(graph)) = job_state.get_execution_graph(&job.job_id).await {
            visit(&job.job_name, graph.as_ref());
        }
    }
}

async fn tasks(state: &RuntimeState) -> Vec<ArrayRef> {
    let mut rows: Vec<TaskRow> = vec![];
    visit_jobs(state, |query, graph| task_rows(query, graph, &mut rows)).await;
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

/// A job's stages, by stage id.
fn stages_in_order(graph: &(dyn ExecutionGraph + Send + Sync)) -> Vec<(&usize, &ExecutionStage)> {
    let mut stages: Vec<_> = graph.stages().iter().collect();
    stages.sort_by_key(|(id, _)| **id);
    stages
}

/// The tasks of one job's execution graph. A Ballista task may run several partitions of
/// its stage (one per slot it got); `partitions` lists them.
fn task_rows(query: &str, graph: &(dyn ExecutionGraph + Send + Sync), rows: &mut Vec<TaskRow>) {
    let job = graph.job_id().to_string();
    for (stage_id, stage) in stages_in_order(graph) {
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

/// One row of `system.runtime.stages`.
struct StageRow {
    query: String,
    job: String,
    stage: i64,
    state: &'static str,
    tasks: i64,
    scheduled: Option<i64>,
    finished: Option<i64>,
    launch_ms: Option<i64>,
    task_ms: Option<i64>,
    times: Option<StageTimes>,
    rows: Option<i64>,
}

async fn stages(state: &RuntimeState) -> Vec<ArrayRef> {
    let mut rows: Vec<StageRow> = vec![];
    visit_jobs(state, |query, graph| stage_rows(query, graph, &mut rows)).await;
    let now = millis(SystemTime::now());
    let elapsed = |r: &StageRow| {
        let end = if r.state == "running" {
            Some(now)
        } else {
            r.finished
        };
        Some(end? - r.scheduled?)
    };
    let time =
        |f: fn(&StageTimes) -> i64| ints(rows.iter().map(|r| r.times.as_ref().map(f)).collect());
    vec![
        strings(rows.iter().map(|r| r.query.clone()).collect()),
        strings(rows.iter().map(|r| r.job.clone()).collect()),
        ints(rows.iter().map(|r| Some(r.stage)).collect()),
        strings(rows.iter().map(|r| r.state.to_string()).collect()),
        ints(rows.iter().map(|r| Some(r.tasks)).collect()),
        timestamps(rows.iter().map(|r| r.scheduled).collect()),
        timestamps(rows.iter().map(|r| r.finished).collect()),
        ints(rows.iter().map(elapsed).collect()),
        ints(rows.iter().map(|r| r.launch_ms).collect()),
        ints(rows.iter().map(|r| r.task_ms).collect()),
        time(|t| t.scan_ms),
        time(|t| t.compute_ms),
        time(|t| t.shuffle_read_ms),
        time(|t| t.shuffle_write_ms),
        ints(rows.iter().map(|r| r.rows).collect()),
    ]
}

/// The stages of one job's execution graph, with the times of their tasks and the
/// metrics of the finished ones.
fn stage_rows(query: &str, graph: &(dyn ExecutionGraph + Send + Sync), rows: &mut Vec<StageRow>) {
    let job = graph.job_id().to_string();
    for (stage_id, stage) in stages_in_order(graph) {
        let (state, metrics) = match stage {
            ExecutionStage::UnResolved(_) => ("waiting", None),
            ExecutionStage::Resolved(_) => ("ready", None),
            ExecutionStage::Running(s) => ("running", s.stage_metrics.as_deref()),
            ExecutionStage::Successful(s) => ("finished", Some(s.stage_metrics.as_slice())),
            ExecutionStage::Failed(_) => ("failed", None),
        };
        let infos = stage.task_infos().unwrap_or_default();
        let known = |t: u128| (t > 0).then_some(t as i64);
        let scheduled = infos.iter().filter_map(|i| known(i.scheduled_time)).min();
        let finished = infos.iter().filter_map(|i| known(i.finish_time)).max();
        let started: Vec<&TaskInfo> = infos.iter().filter(|i| i.start_exec_time > 0).collect();
        let launch_ms = started
            .iter()
            .map(|i| i.start_exec_time.saturating_sub(i.scheduled_time) as i64)
            .sum();
        let task_ms = started
            .iter()
            .filter(|i| i.end_exec_time > 0)
            .map(|i| i.end_exec_time.saturating_sub(i.start_exec_time) as i64)
            .sum();
        let output = infos
            .iter()
            .filter_map(|i| match &i.task_status {
                task_status::Status::Successful(s) => {
                    Some(s.partitions.iter().map(|p| p.num_rows as i64).sum::<i64>())
                }
                _ => None,
            })
            .sum();
        let any = !started.is_empty();
        rows.push(StageRow {
            query: query.to_string(),
            job: job.clone(),
            stage: *stage_id as i64,
            state,
            tasks: infos.len() as i64,
            scheduled,
            finished,
            launch_ms: any.then_some(launch_ms),
            task_ms: any.then_some(task_ms),
            times: metrics.map(|m| StageTimes::of(stage.plan(), m)),
            rows: any.then_some(output),
        });
    }
}

/// Where a stage's task time went, summed over its finished tasks, in milliseconds.
struct StageTimes {
    /// Opening table files and decoding them (DataFusion's file scans:
    /// `time_elapsed_opening` and `time_elapsed_processing`).
    scan_ms: i64,
    /// CPU time of the stage's operators (DataFusion's `elapsed_compute`), not counting
    /// the shuffle reader, whose poll time overlaps the fetches it waits for.
    compute_ms: i64,
    /// Reading the input stages' output: fetching it from other workers over Arrow
    /// Flight and opening this worker's own files.
    shuffle_read_ms: i64,
    /// Writing the stage's output partitions to Arrow IPC files.
    shuffle_write_ms: i64,
}

impl StageTimes {
    /// `metrics` holds one set per operator of `plan` that has metrics, in pre-order, as
    /// the workers collect them.
    fn of(plan: &dyn ExecutionPlan, metrics: &[MetricsSet]) -> Self {
        let mut readers = vec![];
        let mut stack = vec![plan];
        while let Some(node) = stack.pop() {
            if node.metrics().is_some() {
                readers.push(node.name().contains("ShuffleReader"));
            }
            stack.extend(node.children().into_iter().rev().map(|c| c.as_ref()));
        }
        let aligned = readers.len() == metrics.len();
        let nanos =
            |set: &MetricsSet, name: &str| set.sum_by_name(name).map_or(0, |v| v.as_usize() as i64);
        let (mut scan, mut compute, mut read, mut write) = (0, 0, 0, 0);
        for (i, set) in metrics.iter().enumerate() {
            if !(aligned && readers[i]) {
                compute += set.elapsed_compute().unwrap_or(0) as i64;
            }
            scan += nanos(set, "time_elapsed_opening") + nanos(set, "time_elapsed_processing");
            read += nanos(set, "fetch_time") + nanos(set, "local_read_time");
            write += nanos(set, "write_time");
        }
        Self {
            scan_ms: scan / 1_000_000,
            compute_ms: compute / 1_000_000,
            shuffle_read_ms: read / 1_000_000,
            shuffle_write_ms: write / 1_000_000,
        }
    }
}
