//! `quarry-bench tpch --sf 1 --mode local|pgwire`: the 22 TPC-H queries with a warm-up and
//! timed runs; per query the median, rows and whether the answer matched the reference.
//! A wrong answer fails the run. Results print as markdown and are written as JSON.
//! `quarry-bench wire` measures the PostgreSQL protocol, `quarry-bench federated` a
//! federated TPC-H subset against PostgreSQL alone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use futures::TryStreamExt;
use quarry_coordinator::{Engine, EngineConfig, Output, Session, ensure_tpch, text_rows};
use serde::Serialize;

mod federated;
mod wire;

#[derive(Parser)]
#[command(name = "quarry-bench")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// TPC-H queries 1 to 22.
    Tpch(TpchArgs),
    /// PostgreSQL-protocol round-trip latency and large-result throughput, Quarry beside
    /// the PostgreSQL server, with the same client.
    Wire(wire::WireArgs),
    /// TPC-H Q3, Q5, Q10, Q12 with orders and customer in PostgreSQL and the rest in
    /// Parquet, against the same queries inside PostgreSQL alone.
    Federated(federated::FederatedArgs),
}

#[derive(clap::Args)]
struct TpchArgs {
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    #[arg(long, value_enum, default_value_t = Mode::Local)]
    mode: Mode,
    /// Timed runs per query (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Queries to run, e.g. `1,3,18`; all 22 by default.
    #[arg(long, value_delimiter = ',')]
    queries: Vec<usize>,
    /// Where the data and metastore live; generated on first use.
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
    /// Workers of `--mode distributed`.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// JSON results file; default benches/results/tpch-sf<SF>-<mode>.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Session settings for the run, `KEY=VALUE`, repeatable (for example
    /// `datafusion.execution.parquet.pushdown_filters=true`); in every mode, plain
    /// DataFusion included.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Reference answers (qNN.csv, as in tpch/answers/) for a scale factor that has none
    /// built in, such as DuckDB's written by `benches/compare.py --answers-out DIR`.
    #[arg(long)]
    answers: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, Serialize, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// The embedded engine, in this process.
    Local,
    /// Through the PostgreSQL wire protocol (tokio-postgres, text results).
    Pgwire,
    /// Plain DataFusion with default settings over the same files, no Quarry: the
    /// baseline for Quarry's own overhead.
    Datafusion,
    /// The embedded Ballista scheduler and `--workers` workers in this process, over gRPC
    /// and Arrow Flight on loopback.
    Distributed,
}

#[derive(Serialize)]
struct QueryResult {
    query: usize,
    median_ms: f64,
    runs_ms: Vec<f64>,
    rows: usize,
    answer: &'static str,
    /// Distributed mode: where the last timed run's time went.
    #[serde(skip_serializing_if = "Option::is_none")]
    breakdown: Option<Breakdown>,
}

/// One distributed run of a query, from `system.runtime.queries` and `.stages`. Offsets
/// are milliseconds since the query started in the session; times are summed over tasks.
#[derive(Serialize)]
struct Breakdown {
    /// The query's time in the session, planning to the last row.
    total_ms: i64,
    /// Planning, job submission and scheduling until the first task was handed out.
    first_task_at_ms: i64,
    /// When the scheduler learned that the last task had finished.
    last_task_done_at_ms: i64,
    stages: Vec<StageBreakdown>,
}

#[derive(Serialize)]
struct StageBreakdown {
    stage: i64,
    tasks: i64,
    scheduled_at_ms: i64,
    finished_at_ms: i64,
    /// Task launch: from being scheduled to running on a worker, summed over tasks.
    launch_ms: i64,
    task_ms: i64,
    /// Opening and decoding table files.
    scan_ms: i64,
    compute_ms: i64,
    shuffle_read_ms: i64,
    shuffle_write_ms: i64,
    rows: i64,
}

impl Breakdown {
    fn sum(&self, field: fn(&StageBreakdown) -> i64) -> i64 {
        self.stages.iter().map(field).sum()
    }
}

/// The breakdown of the last distributed job this process ran (the bench runs one query
/// at a time, and queries over the system tables do not run on the cluster).
async fn last_job_breakdown(runner: &mut impl Runner) -> Result<Breakdown, String> {
    let rows = runner
        .run(
            "SELECT q.elapsed_ms, s.stage, s.tasks, \
                    CAST(s.scheduled AS BIGINT) - CAST(q.started AS BIGINT), \
                    CAST(s.finished AS BIGINT) - CAST(q.started AS BIGINT), \
                    s.launch_ms, s.task_ms, s.scan_ms, s.compute_ms, s.shuffle_read_ms, \
                    s.shuffle_write_ms, s.rows \
             FROM system.runtime.stages s JOIN system.runtime.queries q \
               ON q.query_id = s.query_id \
             WHERE s.query_id = (SELECT max(query_id) FROM system.runtime.stages) \
             ORDER BY s.stage",
        )
        .await?;
    let number = |row: &[String], i: usize| -> Result<i64, String> {
        row[i]
            .parse()
            .map_err(|_| format!("system.runtime.stages: {:?} is not a number", row[i]))
    };
    let mut stages = Vec::with_capacity(rows.len());
    let mut total_ms = 0;
    for row in &rows {
        total_ms = number(row, 0)?;
        stages.push(StageBreakdown {
            stage: number(row, 1)?,
            tasks: number(row, 2)?,
            scheduled_at_ms: number(row, 3)?,
            finished_at_ms: number(row, 4)?,
            launch_ms: number(row, 5)?,
            task_ms: number(row, 6)?,
            scan_ms: number(row, 7)?,
            compute_ms: number(row, 8)?,
            shuffle_read_ms: number(row, 9)?,
            shuffle_write_ms: number(row, 10)?,
            rows: number(row, 11)?,
        });
    }
    if stages.is_empty() {
        return Err("the query ran no stages on the cluster".into());
    }
    Ok(Breakdown {
        total_ms,
        first_task_at_ms: stages.iter().map(|s| s.scheduled_at_ms).min().unwrap_or(0),
        last_task_done_at_ms: stages.iter().map(|s| s.finished_at_ms).max().unwrap_or(0),
        stages,
    })
}

#[derive(Serialize)]
struct Report {
    sf: f64,
    mode: Mode,
    runs: usize,
    settings: Vec<String>,
    machine: String,
    total_median_ms: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    queries: Vec<QueryResult>,
}

/// Runs one query to completion and returns its rows as text.
trait Runner {
    async fn run(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String>;
}

struct LocalRunner {
    session: Session,
}

impl Runner for LocalRunner {
    async fn run(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        match self
            .session
            .execute(sql)
            .await
            .map_err(|e| e.user_message())?
        {
            Output::Rows(stream) => {
                let batches: Vec<RecordBatch> =
                    stream.try_collect().await.map_err(|e| e.to_string())?;
                text_rows(&batches).map_err(|e| e.to_string())
            }
            Output::Done(_) => Ok(vec![]),
        }
    }
}

struct DataFusionRunner {
    ctx: datafusion::prelude::SessionContext,
}

impl Runner for DataFusionRunner {
    async fn run(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let batches = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        text_rows(&batches).map_err(|e| e.to_string())
    }
}

struct PgwireRunner {
    client: tokio_postgres::Client,
}

impl Runner for PgwireRunner {
    async fn run(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        simple_query_rows(&self.client, sql).await
    }
}

/// The rows of `sql` (simple query protocol) as text, NULL as `NULL`.
async fn simple_query_rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<String>>, String> {
    let messages = client.simple_query(sql).await.map_err(|e| e.to_string())?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// `d` in milliseconds, to two decimals.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Writes `report` as pretty JSON to `out`, creating its folder.
fn write_json(out: &std::path::Path, report: &impl Serialize) -> Result<(), String> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        out,
        serde_json::to_string_pretty(report).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("results written to {}", out.display());
    Ok(())
}

/// CPU seconds used by this process so far (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: utime is the 12th, stime the 13th (0-based 11, 12).
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process in MiB, from /proc.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores, {mem:.0} GiB")
}

/// Starts the scheduler and `args.workers` workers in this process; the cores are shared
/// out between the workers as task slots.
async fn start_cluster(engine: &Engine, args: &TpchArgs) -> Result<(), String> {
    let secret = quarry_worker::ClusterSecret::new("quarry-bench-cluster-secret")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let cluster = quarry_coordinator::Cluster::start(engine, listener, secret.clone())
        .await
        .map_err(|e| e.user_message())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slots = (cores / args.workers).max(1);
    cluster
        .start_local_workers(args.workers, slots, &args.data_dir, &Default::default())
        .await
        .map_err(|e| e.user_message())
}

/// Quarry's PostgreSQL front door in this process, on a free loopback port, trusting clients.
struct LocalServer {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalServer {
    async fn start(engine: &Engine) -> Result<Self, String> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(quarry_pgwire::serve(
            engine.clone(),
            quarry_pgwire::ServerConfig {
                listen: "127.0.0.1:0".into(),
                max_connections: quarry_pgwire::DEFAULT_MAX_CONNECTIONS,
                tls: None,
                require_tls: false,
                auth: quarry_pgwire::AuthMode::Trust,
            },
            move |addr| {
                let _ = bound_tx.send(addr);
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let addr = bound
            .await
            .map_err(|_| "the server did not start".to_string())?;
        Ok(Self { addr, stop, task })
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The engine over `data_dir`, with TPC-H at `sf` generated there on first use.
async fn open_engine(data_dir: &std::path::Path, sf: f64) -> Result<Engine, String> {
    open_engine_with(EngineConfig::new(data_dir), sf).await
}

/// The engine of `config`, with TPC-H at `sf` generated on first use.
async fn open_engine_with(config: EngineConfig, sf: f64) -> Result<Engine, String> {
    let engine = Engine::open(config).await.map_err(|e| e.user_message())?;
    if let Some(message) = ensure_tpch(&engine, sf)
        .await
        .map_err(|e| e.user_message())?
    {
        eprintln!("{message}");
    }
    Ok(engine)
}

async fn bench(args: TpchArgs) -> Result<(), String> {
    let engine = open_engine(&args.data_dir, args.sf).await?;
    let queries: Vec<usize> = if args.queries.is_empty() {
        (1..=22).collect()
    } else {
        args.queries.clone()
    };
    let results = match args.mode {
        Mode::Local => {
            let mut runner = LocalRunner {
                session: engine.new_session().map_err(|e| e.user_message())?,
            };
            runner.run("USE tpch").await?;
            run_all(&mut runner, &args, &queries).await?
        }
        Mode::Pgwire => {
            let server = LocalServer::start(&engine).await?;
            let (client, connection) = tokio_postgres::connect(
                &format!(
                    "host=127.0.0.1 port={} user=bench dbname=tpch",
                    server.port()
                ),
                tokio_postgres::NoTls,
            )
            .await
            .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let mut runner = PgwireRunner { client };
            runner.run("USE tpch").await?;
            let results = run_all(&mut runner, &args, &queries).await;
            server.stop().await;
            results?
        }
        Mode::Datafusion => {
            let mut runner = DataFusionRunner {
                ctx: datafusion::prelude::SessionContext::new(),
            };
            let warehouse = engine.warehouse().join("tpch.db");
            for table in quarry_tpch::TABLES {
                let location = warehouse.join(table);
                runner
                    .ctx
                    .sql(&format!(
                        "CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{}/'",
                        location.display()
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            run_all(&mut runner, &args, &queries).await?
        }
        Mode::Distributed => {
            start_cluster(&engine, &args).await?;
            let mut runner = LocalRunner {
                session: engine.new_session().map_err(|e| e.user_message())?,
            };
            runner.run("USE tpch").await?;
            run_all(&mut runner, &args, &queries).await?
        }
    };
    let report = Report {
        sf: args.sf,
        mode: args.mode,
        runs: args.runs,
        settings: args.settings.clone(),
        machine: machine(),
        total_median_ms: results.iter().map(|r| r.median_ms).sum(),
        cpu_seconds: cpu_seconds(),
        peak_rss_mib: peak_rss_mib(),
        queries: results,
    };
    print_markdown(&report);
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(
            format!("benches/results/tpch-sf{}-{:?}.json", args.sf, args.mode).to_lowercase(),
        )
    });
    write_json(&out, &report)?;
    let wrong: Vec<String> = report
        .queries
        .iter()
        .filter(|q| q.answer == "wrong")
        .map(|q| format!("q{}", q.query))
        .collect();
    if !wrong.is_empty() {
        return Err(format!("wrong answers: {}", wrong.join(", ")));
    }
    Ok(())
}

async fn run_all(
    runner: &mut impl Runner,
    args: &TpchArgs,
    queries: &[usize],
) -> Result<Vec<QueryResult>, String> {
    for setting in &args.settings {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("--set {setting}: expected KEY=VALUE"))?;
        runner
            .run(&format!("SET {} = '{}'", key.trim(), value.trim()))
            .await
            .map_err(|e| format!("--set {setting}: {e}"))?;
    }
    let mut results = Vec::new();
    for &n in queries {
        let sql = quarry_tpch::query(n).ok_or_else(|| format!("no TPC-H query {n}"))?;
        let given = match &args.answers {
            Some(dir) => {
                let path = dir.join(format!("q{n:02}.csv"));
                Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("answer {}: {e}", path.display()))?,
                )
            }
            None => None,
        };
        let expected = given.as_deref().or(quarry_tpch::answer(args.sf, n));
        let (rows, answer, median, times) = measure(runner, sql, expected, args.runs)
            .await
            .map_err(|e| format!("q{n}: {e}"))?;
        eprintln!("q{n:02}: {:>9.1} ms  {answer}", millis(median));
        let breakdown = if args.mode == Mode::Distributed {
            Some(
                last_job_breakdown(runner)
                    .await
                    .map_err(|e| format!("q{n}: {e}"))?,
            )
        } else {
            None
        };
        results.push(QueryResult {
            query: n,
            median_ms: millis(median),
            runs_ms: times.into_iter().map(millis).collect(),
            rows,
            answer,
            breakdown,
        });
    }
    Ok(results)
}

/// Runs `sql` once (its rows checked against `expected`, the reference answer, when there
/// is one: `ok`, `wrong` or `unchecked`), then `runs` timed times: rows, answer, median
/// and every run's time.
async fn measure(
    runner: &mut impl Runner,
    sql: &str,
    expected: Option<&str>,
    runs: usize,
) -> Result<(usize, &'static str, Duration, Vec<Duration>), String> {
    let rows = runner.run(sql).await?;
    let answer = match expected {
        None => "unchecked",
        Some(expected) => match quarry_tpch::check_answer(expected, &rows) {
            Ok(()) => "ok",
            Err(e) => {
                eprintln!("wrong answer: {e}");
                "wrong"
            }
        },
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        runner.run(sql).await?;
        times.push(started.elapsed());
    }
    let mut sorted = times.clone();
    sorted.sort();
    let median = sorted
        .get(sorted.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    Ok((rows.len(), answer, median, times))
}

fn print_markdown(report: &Report) {
    println!(
        "TPC-H SF {} through Quarry ({:?}), {} timed runs after a warm-up, {}",
        report.sf, report.mode, report.runs, report.machine
    );
    if !report.settings.is_empty() {
        println!("settings: {}", report.settings.join(", "));
    }
    println!();
    println!("| query | median ms | rows | answer |");
    println!("|---:|---:|---:|---|");
    for q in &report.queries {
        println!(
            "| {} | {:.1} | {} | {} |",
            q.query, q.median_ms, q.rows, q.answer
        );
    }
    println!("| total | {:.1} | | |", report.total_median_ms);
    println!();
    println!(
        "CPU {:.1} s, peak RSS {:.0} MiB",
        report.cpu_seconds, report.peak_rss_mib
    );
    if report.queries.iter().any(|q| q.breakdown.is_some()) {
        print_breakdowns(report);
    }
}

/// Where each distributed query's last run spent its time: before the first task, in the
/// stages, after the last one, and what the tasks did (all in ms).
fn print_breakdowns(report: &Report) {
    println!();
    println!(
        "| query | total | first task at | last task done at | after | stages | tasks \
         | launch | task time | scan | compute | shuffle read | shuffle write |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for q in &report.queries {
        let Some(b) = &q.breakdown else { continue };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            q.query,
            b.total_ms,
            b.first_task_at_ms,
            b.last_task_done_at_ms,
            b.total_ms - b.last_task_done_at_ms,
            b.stages.len(),
            b.sum(|s| s.tasks),
            b.sum(|s| s.launch_ms),
            b.sum(|s| s.task_ms),
            b.sum(|s| s.scan_ms),
            b.sum(|s| s.compute_ms),
            b.sum(|s| s.shuffle_read_ms),
            b.sum(|s| s.shuffle_write_ms),
        );
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        BenchCommand::Tpch(args) => bench(args).await,
        BenchCommand::Wire(args) => wire::bench(args).await,
        BenchCommand::Federated(args) => federated::bench(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quarry-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
