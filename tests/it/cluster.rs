//! Distributed mode: `quarry coordinator` and two `quarry worker` processes on loopback,
//! queried through the coordinator's PostgreSQL front door.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::path::Path;

use ballista_core::serde::protobuf::executor_grpc_client::ExecutorGrpcClient;
use ballista_core::serde::protobuf::{CancelTasksParams, StopExecutorParams};
use datafusion::arrow::array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use quarry_coordinator::{Cluster, Engine, EngineConfig, Output};
use quarry_files::S3Config;
use quarry_worker::ClusterSecret;
use tokio_postgres::{NoTls, SimpleQueryMessage};
use tonic::transport::Endpoint;

/// The secret the test cluster shares.
const SECRET: &str = "test-cluster-secret-0123456789";
/// The coordinator's administrator (created at its first start), whom the tests connect as.
const ADMIN_USER: &str = "tester";
const ADMIN_PASSWORD: &str = "tester-password-0123";
/// The coordinator's key for catalog passwords (not the user's key file).
pub const MASTER_KEY: &str = "test-master-key-0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process stopped by PID (SIGKILL) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Cluster tests run one at a time: four clusters at once on two cores turn heartbeat
/// timing into noise (and made Ballista lose a job after a worker loss, see
/// `a_query_survives_losing_one_of_two_workers`).
pub(crate) static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A worker process, its node id and the address of its task service.
struct Worker {
    process: Process,
    id: String,
    task_service: String,
}

/// A coordinator with its workers; everything is stopped on drop.
pub struct TestCluster {
    coordinator: Process,
    workers: Vec<Worker>,
    worker_options: Vec<String>,
    pub pg_port: u16,
    pub scheduler: String,
    data: tempfile::TempDir,
    /// Last, so the processes are stopped before the next test may start a cluster.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl TestCluster {
    /// A coordinator (TPC-H SF 0.01 in database `tpch`) and `workers` workers, ready when
    /// every worker has joined.
    pub async fn start(workers: usize) -> TestCluster {
        Self::start_with(workers, &[]).await
    }

    /// Like [`TestCluster::start`], with extra options for every worker.
    pub async fn start_with(workers: usize, worker_options: &[&str]) -> TestCluster {
        let turn = ONE_CLUSTER_AT_A_TIME.lock().await;
        let data = tempfile::tempdir().unwrap();
        let pg_port = free_port();
        let scheduler = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["coordinator", "--tpch-sf", "0.01", "--listen"])
            .arg(format!("127.0.0.1:{pg_port}"))
            .args(["--scheduler-listen", &scheduler, "--admin-user", ADMIN_USER])
            .arg("--data-dir")
            .arg(data.path())
            .env("QUARRY_CLUSTER_SECRET", SECRET)
            .env("QUARRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("QUARRY_MASTER_KEY", MASTER_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let coordinator = Process(child);
        assert_eq!(
            first_line.trim_end(),
            format!("workers join: quarry worker --coordinator {scheduler}")
        );
        let mut cluster = TestCluster {
            _turn: turn,
            coordinator,
            workers: vec![],
            worker_options: worker_options.iter().map(|o| o.to_string()).collect(),
            pg_port,
            scheduler,
            data,
        };
        for _ in 0..workers {
            cluster.add_worker();
        }
        cluster.wait_for_workers(workers).await;
        cluster
    }

    /// The coordinator's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    pub fn add_worker(&mut self) {
        let work_dir = self
            .data
            .path()
            .join(format!("worker-{}", self.workers.len()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["worker", "--coordinator", &self.scheduler, "--slots", "2"])
            .arg("--work-dir")
            .arg(&work_dir)
            .args(&self.worker_options)
            .env("QUARRY_CLUSTER_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // "quarry: worker-127.0.0.1:PORT joining ... task service 127.0.0.1:PORT)": the
        // worker's node id and where the scheduler launches its tasks.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        let unexpected = || panic!("unexpected first line of a worker: {first}");
        let id = first
            .strip_prefix("quarry: ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(unexpected)
            .to_string();
        let task_service = first
            .trim_end()
            .strip_suffix(')')
            .and_then(|rest| rest.rsplit("task service ").next())
            .unwrap_or_else(unexpected)
            .to_string();
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        self.workers.push(Worker {
            process: Process(child),
            id,
            task_service,
        });
    }

    /// Kills the worker with node id `id` (SIGKILL).
    pub fn kill_worker(&mut self, id: &str) {
        let worker = self
            .workers
            .iter_mut()
            .find(|worker| worker.id == id)
            .unwrap_or_else(|| panic!("no worker {id}"));
        let _ = worker.process.0.kill();
        let _ = worker.process.0.wait();
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user={ADMIN_USER} password={ADMIN_PASSWORD} dbname=quarry",
                self.pg_port
            ),
            NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        client
    }

    async fn wait_for_workers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = loop {
            match tokio_postgres::connect(
                &format!(
                    "host=127.0.0.1 port={} user={ADMIN_USER} password={ADMIN_PASSWORD}",
                    self.pg_port
                ),
                NoTls,
            )
            .await
            {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    break client;
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("the coordinator does not answer: {e}"),
            }
        };
        loop {
            let active = rows(
                &client,
                "SELECT count(*) FROM system.runtime.nodes WHERE NOT coordinator AND state = 'active'",
            )
            .await
            .unwrap();
            if active[0][0] == n.to_string() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} workers did not join within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn coordinator_alive(&mut self) -> bool {
        self.coordinator.0.try_wait().unwrap().is_none()
    }
}

/// Starts a scheduler for `engine` and two workers in this process, and waits until both
/// joined.
pub async fn start_in_process(
    engine: &Engine,
    data_dir: &Path,
    s3: &S3Config,
) -> Result<(), String> {
    let secret = ClusterSecret::new("slt-cluster-secret-0123456789")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let cluster = Cluster::start(engine, listener, secret)
        .await
        .map_err(|e| e.user_message())?;
    cluster
        .start_local_workers(2, 2, data_dir, s3)
        .await
        .map_err(|e| e.user_message())
}

/// The rows of a simple query, values as text (`NULL` for null).
pub async fn rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_runs_on_two_workers_with_the_answers_of_local_mode() {
    let mut cluster = TestCluster::start(2).await;
    let client = cluster.client().await;
    client.simple_query("USE tpch").await.unwrap();
    let mut failures = Vec::new();
    for n in 1..=22 {
        let sql = quarry_tpch::query(n).unwrap();
        match rows(&client, sql).await {
            Ok(rows) => {
                if let Err(e) =
                    quarry_tpch::check_answer(quarry_tpch::answer(0.01, n).unwrap(), &rows)
                {
                    failures.push(format!("q{n}: {e}"));
                }
            }
            Err(e) => failures.push(format!("q{n} failed: {e:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 22 queries wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The work ran on the workers: each of the 22 queries has finished tasks there, and
    // both workers took part.
    let jobs = rows(
        &client,
        "SELECT count(DISTINCT q.query_id) FROM system.runtime.queries q \
         JOIN system.runtime.tasks t ON t.query_id = q.query_id \
         JOIN system.runtime.nodes n ON n.node_id = t.worker AND NOT n.coordinator \
         WHERE t.state = 'finished' AND q.state = 'FINISHED'",
    )
    .await
    .unwrap();
    assert_eq!(jobs, vec![vec!["22".to_string()]]);
    let workers_used = rows(
        &client,
        "SELECT count(DISTINCT worker) FROM system.runtime.tasks WHERE state = 'finished'",
    )
    .await
    .unwrap();
    assert_eq!(workers_used, vec![vec!["2".to_string()]]);

    // system.runtime.stages agrees with the tasks: one finished row per stage that ran, with
    // its task count and output rows, and the time its tasks spent in operators and shuffles.
    let stages = rows(
        &client,
        "SELECT count(*), count(*) FILTER (WHERE s.tasks = t.n AND s.rows = t.r \
                AND s.scheduled <= s.finished AND s.shuffle_write_ms IS NOT NULL \
                AND s.shuffle_read_ms IS NOT NULL AND s.scan_ms IS NOT NULL \
                AND s.launch_ms >= 0), \
                sum(s.compute_ms) > 0 \
         FROM system.runtime.stages s JOIN ( \
           SELECT query_id, stage, count(*) AS n, sum(rows) AS r FROM system.runtime.tasks \
           WHERE state = 'finished' GROUP BY query_id, stage) t \
         ON s.query_id = t.query_id AND s.stage = t.stage WHERE s.state = 'finished'",
    )
    .await
    .unwrap();
    let ran = rows(
        &client,
        "SELECT count(*) FROM (SELECT DISTINCT query_id, stage FROM system.runtime.tasks \
         WHERE state = 'finished')",
    )
    .await
    .unwrap();
    assert_eq!(
        stages,
        vec![vec![ran[0][0].clone(), ran[0][0].clone(), "t".to_string()]]
    );

    // Catalog queries run on the coordinator, also when they read data tables too.
    let mixed = rows(
        &client,
        "SELECT count(*) FROM information_schema.tables t JOIN tpch.nation n \
         ON t.table_name = 'nation' AND t.table_schema = 'tpch'",
    )
    .await
    .unwrap();
    assert_eq!(mixed, vec![vec!["25".to_string()]]);
    let mixed_tasks = rows(
        &client,
        "SELECT count(*) FROM system.runtime.tasks t JOIN system.runtime.queries q \
         ON t.query_id = q.query_id WHERE q.query LIKE '%information_schema.tables t JOIN%'",
    )
    .await
    .unwrap();
    assert_eq!(mixed_tasks, vec![vec!["0".to_string()]]);
    let tables = rows(
        &client,
        "SELECT relname FROM pg_catalog.pg_class WHERE relname = 'lineitem'",
    )
    .await
    .unwrap();
    assert_eq!(tables, vec![vec!["lineitem".to_string()]]);

    // psql's catalog queries work against the coordinator.
    for (meta, expected) in [
        ("\\dt tpch.*", "lineitem"),
        ("\\d tpch.nation", "n_regionkey"),
    ] {
        let output = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.pg_port.to_string(),
                "-U",
                ADMIN_USER,
            ])
            .env("PGPASSWORD", ADMIN_PASSWORD)
            .args(["-d", "quarry", "-X", "-c", meta])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(expected),
            "psql {meta}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // EXPLAIN ANALYZE shows the stages the workers ran.
    let explained = rows(
        &client,
        "EXPLAIN ANALYZE SELECT l_returnflag, count(*) FROM lineitem GROUP BY l_returnflag",
    )
    .await
    .unwrap();
    let text = explained
        .iter()
        .map(|r| r.join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("Stage"), "{text}");
    assert!(text.contains("ShuffleWriterExec"), "{text}");

    // statement_timeout stops a distributed query and its tasks on the workers.
    client
        .simple_query("SET statement_timeout = '1s'")
        .await
        .unwrap();
    let error = client
        .simple_query(LONG_JOIN)
        .await
        .expect_err("the join takes far more than a second");
    assert_eq!(error.as_db_error().unwrap().code().code(), "57014");
    client
        .simple_query("SET statement_timeout = 0")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = rows(
            &client,
            "SELECT count(*) FROM system.runtime.tasks WHERE state = 'running'",
        )
        .await
        .unwrap();
        if running == vec![vec!["0".to_string()]] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tasks still run after the timeout"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(cluster.coordinator_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_the_cluster_secret_is_refused() {
    let cluster = TestCluster::start(0).await;
    let work_dir = cluster.data.path().join("intruder");

    // No secret at all: the worker does not start.
    let output = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["worker", "--coordinator", &cluster.scheduler])
        .env_remove("QUARRY_CLUSTER_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("QUARRY_CLUSTER_SECRET is not set"));

    // A wrong secret: the coordinator refuses it and it stops.
    let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["worker", "--coordinator", &cluster.scheduler, "--work-dir"])
        .arg(&work_dir)
        .env("QUARRY_CLUSTER_SECRET", "not-the-cluster-secret-at-all")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a worker with a wrong secret kept running");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(stderr.contains("cluster secret"), "{stderr}");
    let client = cluster.client().await;
    let joined = rows(
        &client,
        "SELECT count(*) FROM system.runtime.nodes WHERE NOT coordinator",
    )
    .await
    .unwrap();
    assert_eq!(joined, vec![vec!["0".to_string()]]);
}

/// Ballista's executor service launches, cancels and stops a worker's tasks; on a worker's
/// advertised address it sits behind the cluster secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_task_service_refuses_callers_without_the_cluster_secret() {
    let cluster = TestCluster::start(1).await;
    let address = format!("http://{}", cluster.workers[0].task_service);
    let no_tasks = || CancelTasksParams { task_infos: vec![] };

    let mut intruder = ExecutorGrpcClient::connect(address.clone()).await.unwrap();
    let refused = intruder.cancel_tasks(no_tasks()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(
        refused.message().contains("QUARRY_CLUSTER_SECRET"),
        "{refused:?}"
    );
    let stop = StopExecutorParams {
        executor_id: cluster.workers[0].id.clone(),
        reason: "an intruder".into(),
        force: true,
    };
    let refused = intruder.stop_executor(stop).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    // A caller with the secret is let through to Ballista's service.
    let endpoint = Endpoint::from_shared(address).unwrap();
    let endpoint = (ClusterSecret::new(SECRET).unwrap().endpoint_override())(endpoint).unwrap();
    let mut member = ExecutorGrpcClient::new(endpoint.connect().await.unwrap());
    member.cancel_tasks(no_tasks()).await.unwrap();

    // The worker is still there and runs queries (whose tasks pass the gate too).
    let client = cluster.client().await;
    let count = rows(&client, "SELECT count(*) FROM tpch.lineitem")
        .await
        .unwrap();
    assert_eq!(count, vec![vec!["60175".to_string()]]);
    let on_the_worker = format!(
        "SELECT count(*) > 0 FROM system.runtime.tasks WHERE worker = '{}'",
        cluster.workers[0].id
    );
    let tasks = rows(&client, &on_the_worker).await.unwrap();
    assert_eq!(tasks, vec![vec!["t".to_string()]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_survives_losing_one_of_two_workers() {
    let mut cluster = TestCluster::start(2).await;
    let client = cluster.client().await;
    // A join of several seconds (a debug build takes ~10 s): two scan stages, the join
    // stage, the final aggregate.
    let join = "SELECT count(*) FROM tpch.lineitem a JOIN tpch.lineitem b \
                ON a.l_suppkey = b.l_suppkey WHERE a.l_quantity < 10";
    // The same number without a join: per supplier, matching rows times all its rows.
    let expected = rows(
        &client,
        "SELECT sum(a.n * b.n) FROM \
         (SELECT l_suppkey, count(*) AS n FROM tpch.lineitem WHERE l_quantity < 10 GROUP BY 1) a \
         JOIN (SELECT l_suppkey, count(*) AS n FROM tpch.lineitem GROUP BY 1) b \
         ON a.l_suppkey = b.l_suppkey",
    )
    .await
    .unwrap();

    let runner = cluster.client().await;
    let started = Instant::now();
    let query = tokio::spawn(async move { rows(&runner, join).await });

    // Once a stage has finished and a later one runs, kill the worker running it.
    let victim = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the join never reached its second stage"
        );
        let running = rows(
            &client,
            "SELECT t.worker FROM system.runtime.tasks t JOIN system.runtime.queries q \
             ON t.query_id = q.query_id \
             WHERE q.query LIKE '%a.l_quantity < 10' AND q.state = 'RUNNING' \
               AND t.state = 'running' AND t.stage > (SELECT min(stage) FROM system.runtime.tasks \
                 WHERE query_id = q.query_id AND state = 'finished')",
        )
        .await
        .unwrap();
        if let Some(row) = running.first() {
            break row[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cluster.kill_worker(&victim);
    let killed_at = started.elapsed();

    let answer = tokio::time::timeout(Duration::from_secs(180), query)
        .await
        .expect("the query ends after the worker is lost")
        .unwrap()
        .expect("the query succeeds on the remaining worker");
    eprintln!(
        "worker {victim} killed after {killed_at:?}; answer after {:?}",
        started.elapsed()
    );
    assert_eq!(answer, expected);
    let states = rows(
        &client,
        "SELECT count(*) FROM system.runtime.nodes WHERE NOT coordinator AND state = 'active'",
    )
    .await
    .unwrap();
    assert_eq!(states, vec![vec!["1".to_string()]]);

    // With no worker left, the query fails with an error that says so, within 60 s.
    let runner = cluster.client().await;
    // Ten times the rows of the first join: still running when the last worker goes, on
    // an idle machine too (the first join once finished within the 500 ms).
    let query = tokio::spawn(async move { rows(&runner, LONG_JOIN).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = cluster.workers[1 - cluster
        .workers
        .iter()
        .position(|worker| worker.id == victim)
        .unwrap()]
    .id
    .clone();
    cluster.kill_worker(&last);
    let lost_at = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(60), query)
        .await
        .expect("the query fails within 60 s of losing the last worker")
        .unwrap()
        .expect_err("no worker is left to run it");
    eprintln!(
        "no workers: failed after {:?}: {error:?}",
        lost_at.elapsed()
    );
    let message = error
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_else(|| error.to_string());
    assert!(message.contains("executor"), "{message}");
    assert!(cluster.coordinator_alive());
}

/// A join far longer than any test waits for (about 360 million joined rows at SF 0.01;
/// the 36 million of a join on `l_suppkey` alone took under 3 s on an idle machine).
const LONG_JOIN: &str = "SELECT count(*), sum(a.l_quantity * b.l_discount) FROM tpch.lineitem a \
                         JOIN tpch.lineitem b ON a.l_suppkey % 10 = b.l_suppkey % 10";

/// The rows of a statement run in `session`, as text.
async fn session_rows(session: &quarry_coordinator::Session, sql: &str) -> Vec<Vec<String>> {
    match session.execute(sql).await.unwrap() {
        Output::Rows(stream) => {
            let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
            quarry_coordinator::text_rows(&batches).unwrap()
        }
        Output::Done(tag) => panic!("{sql}: no rows ({tag})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_result_cancels_its_tasks_on_the_workers() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(data.path())).await.unwrap();
    quarry_coordinator::ensure_tpch(&engine, 0.01)
        .await
        .unwrap();
    start_in_process(&engine, data.path(), &S3Config::default())
        .await
        .unwrap();
    let session = engine.new_session().unwrap();
    let Output::Rows(mut stream) = session.execute(LONG_JOIN).await.unwrap() else {
        panic!("a query has rows");
    };
    // The join takes far longer than this; the stream yields nothing meanwhile.
    let first = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
    assert!(
        first.is_err(),
        "the join finished too soon to test cancelling: {first:?}"
    );
    drop(stream);

    let observer = engine.new_session().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = session_rows(
            &observer,
            "SELECT q.state, count(t.task) FILTER (WHERE t.state = 'running') \
             FROM system.runtime.queries q LEFT JOIN system.runtime.tasks t \
               ON t.query_id = q.query_id \
             WHERE q.query LIKE '%b.l_suppkey % 10' GROUP BY q.state",
        )
        .await;
        // The scheduler's view: the join's job ended as cancelled.
        let jobs: Vec<String> = engine
            .cluster()
            .unwrap()
            .scheduler()
            .state
            .task_manager
            .get_all_jobs()
            .await
            .unwrap()
            .iter()
            .map(|job| format!("{:?}", job.status.status))
            .collect();
        if state == vec![vec!["CANCELLED".to_string(), "0".to_string()]]
            && jobs.len() == 1
            && jobs[0].contains("Failed")
            && jobs[0].to_lowercase().contains("cancel")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job still runs 20 s after its result was dropped: {state:?}, {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_memory_is_bounded_sorts_spill_and_the_rest_fail_with_53200() {
    let mut cluster = TestCluster::start_with(2, &["--memory-limit", "16MiB"]).await;
    let client = cluster.client().await;

    // A sort larger than a task's share of 16 MiB spills to the work directory.
    let explained = rows(
        &client,
        "EXPLAIN ANALYZE SELECT l_comment, l_orderkey FROM tpch.lineitem ORDER BY l_comment, l_orderkey",
    )
    .await
    .unwrap()
    .concat()
    .join("\n");
    let spills: u64 = explained
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(spills > 0, "the sort did not spill:\n{explained}");

    // A join that needs more than the limit fails cleanly, naming the operator and the pool,
    // after two tries: the hash join runs out of memory, the sort-merge join that is tried
    // next (it spills) too.
    let join = "SELECT count(*), sum(length(a.l_comment || a.l_shipinstruct || a.l_shipmode) \
                + length(b.l_comment || b.l_shipinstruct)) \
                FROM tpch.lineitem a JOIN tpch.lineitem b \
                ON a.l_orderkey = b.l_orderkey AND a.l_linenumber = b.l_linenumber";
    let error = client
        .simple_query(join)
        .await
        .expect_err("the join does not fit in 16 MiB");
    let db = error.as_db_error().expect("an error from the server");
    assert_eq!(db.code().code(), "53200", "{}", db.message());
    assert!(
        db.message().starts_with("resources exhausted: "),
        "{}",
        db.message()
    );
    assert!(
        db.message().contains("pool_size: 16.0 MB"),
        "{}",
        db.message()
    );
    assert!(db.message().contains("Sorter"), "{}", db.message());
    let jobs = rows(
        &client,
        &format!(
            "SELECT count(DISTINCT t.job_id) FROM system.runtime.tasks t \
             JOIN system.runtime.queries q ON q.query_id = t.query_id WHERE q.query = '{}'",
            join.replace('\'', "''")
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        jobs,
        vec![vec!["2".to_string()]],
        "a hash join, then a sort-merge join"
    );

    // Nobody crashed: the same cluster still answers.
    let count = rows(&client, "SELECT count(*) FROM tpch.orders")
        .await
        .unwrap();
    assert_eq!(count, vec![vec!["15000".to_string()]]);
    assert!(cluster.coordinator_alive());
}
