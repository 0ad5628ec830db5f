//! Distributed mode: `quarry coordinator` and two `quarry worker` processes on loopback,
//! queried through the coordinator's PostgreSQL front door.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{NoTls, SimpleQueryMessage};

/// The secret the test cluster shares.
const SECRET: &str = "test-cluster-secret-0123456789";

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

/// A coordinator with its workers; everything is stopped on drop.
pub struct TestCluster {
    coordinator: Process,
    workers: Vec<Process>,
    pub pg_port: u16,
    pub scheduler: String,
    data: tempfile::TempDir,
}

impl TestCluster {
    /// A coordinator (TPC-H SF 0.01 in database `tpch`) and `workers` workers, ready when
    /// every worker has joined.
    pub async fn start(workers: usize) -> TestCluster {
        let data = tempfile::tempdir().unwrap();
        let pg_port = free_port();
        let scheduler = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["coordinator", "--tpch-sf", "0.01", "--listen"])
            .arg(format!("127.0.0.1:{pg_port}"))
            .args(["--scheduler-listen", &scheduler, "--data-dir"])
            .arg(data.path())
            .env("QUARRY_CLUSTER_SECRET", SECRET)
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
            coordinator,
            workers: vec![],
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

    pub fn add_worker(&mut self) {
        let work_dir = self
            .data
            .path()
            .join(format!("worker-{}", self.workers.len()));
        let child = Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["worker", "--coordinator", &self.scheduler, "--slots", "2"])
            .arg("--work-dir")
            .arg(&work_dir)
            .env("QUARRY_CLUSTER_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.workers.push(Process(child));
    }

    /// Kills worker `i` with SIGKILL.
    pub fn kill_worker(&mut self, i: usize) {
        let _ = self.workers[i].0.kill();
        let _ = self.workers[i].0.wait();
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=tester dbname=quarry",
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
                &format!("host=127.0.0.1 port={} user=tester", self.pg_port),
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
