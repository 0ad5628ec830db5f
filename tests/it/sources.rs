//! The PostgreSQL and MariaDB servers of this machine as connector sources: fixtures loaded
//! once (keyed by [`FIXTURE_VERSION`]) with the servers' own clients, psql and mysql.
//!
//! The shared suite is `tests/slt/sources/shared.slt.part`, run by `tests/slt/sources_*.slt`
//! over a PostgreSQL catalog, a MySQL catalog and Parquet copies; all three expect the
//! same answers. Connection errors and persistence are tested here.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use crate::cluster::{MASTER_KEY, TestCluster, rows};

/// Bump after changing tests/fixtures/shop_*.sql: the next run reloads them.
pub const FIXTURE_VERSION: i32 = 8;

/// The PostgreSQL database holding schema `quarry_shop` (created by the tests).
pub const PG_DATABASE: &str = "quarry_fed";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn psql(database: &str) -> Command {
    let mut c = Command::new("psql");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
        "-U",
        "postgres",
        "-d",
        database,
    ])
    .args(["-v", "ON_ERROR_STOP=1", "-q", "-tA"]);
    c
}

fn mysql() -> Command {
    let mut c = Command::new("mysql");
    c.args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-N", "-B"]);
    c
}

fn load_postgres() -> Result<(), String> {
    let exists = run(psql("postgres").args([
        "-c",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"),
    ]))?;
    if exists != "1" {
        run(psql("postgres").args(["-c", &format!("CREATE DATABASE {PG_DATABASE}")]))?;
    }
    let current =
        run(psql(PG_DATABASE).args(["-c", "SELECT max(version) FROM quarry_shop.fixture_version"]))
            .unwrap_or_default();
    if current == FIXTURE_VERSION.to_string() {
        return Ok(());
    }
    run(psql(PG_DATABASE).args(["-f", &fixture("shop_postgres.sql")]))?;
    run(psql(PG_DATABASE).args([
        "-c",
        &format!("INSERT INTO quarry_shop.fixture_version VALUES ({FIXTURE_VERSION})"),
    ]))?;
    Ok(())
}

fn load_mysql() -> Result<(), String> {
    let current = run(mysql().args(["-e", "SELECT max(version) FROM quarry_shop.fixture_version"]))
        .unwrap_or_default();
    if current == FIXTURE_VERSION.to_string() {
        return Ok(());
    }
    run(mysql()
        .arg("-e")
        .arg(format!("source {}", fixture("shop_mysql.sql"))))?;
    run(mysql().args([
        "-e",
        &format!("INSERT INTO quarry_shop.fixture_version VALUES ({FIXTURE_VERSION})"),
    ]))?;
    Ok(())
}

/// Loads the shop fixtures into both servers unless they hold this version already.
pub fn ensure_fixtures() -> Result<(), String> {
    static LOADED: Mutex<bool> = Mutex::new(false);
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if !*loaded {
        load_postgres()?;
        load_mysql()?;
        *loaded = true;
    }
    Ok(())
}

fn pg_catalog_sql(name: &str, password: &str) -> String {
    format!(
        "CREATE CATALOG {name} USING postgres WITH (host = '127.0.0.1', port = 5432, \
         database = '{PG_DATABASE}', user = 'postgres', password = '{password}', sslmode = 'disable')"
    )
}

const MYSQL_CATALOG: &str =
    "CREATE CATALOG my USING mysql WITH (host = '127.0.0.1', user = 'root', sslmode = 'disabled')";

/// Every byte the coordinator keeps in its data directory, as text.
fn stored_bytes(data_dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_of_postgres_mysql_and_parquet_runs_on_the_workers() {
    ensure_fixtures().unwrap();
    let cluster = TestCluster::start(2).await;
    let client = cluster.client().await;
    let password = "catalog-password-never-shown";
    rows(&client, &pg_catalog_sql("pg", password))
        .await
        .unwrap();
    rows(&client, MYSQL_CATALOG).await.unwrap();

    // PostgreSQL customers, MariaDB orders, Parquet nations (TPC-H) in one statement.
    let answer = rows(
        &client,
        "SELECT c.name, n.n_name, count(*) AS orders FROM pg.quarry_shop.customers c \
         JOIN my.quarry_shop.orders o ON c.id = o.customer_id \
         JOIN tpch.nation n ON n.n_nationkey = o.customer_id \
         GROUP BY c.name, n.n_name ORDER BY c.name",
    )
    .await
    .unwrap();
    let expected: Vec<Vec<String>> = [
        ["Alice", "ARGENTINA", "2"],
        ["Bob ", "CANADA", "1"],
        ["O'Brien", "INDIA", "1"],
        ["Zoë", "GERMANY", "1"],
        ["alice", "BRAZIL", "1"],
        ["Émile", "ETHIOPIA", "2"],
    ]
    .iter()
    .map(|r| r.iter().map(|v| v.to_string()).collect())
    .collect();
    assert_eq!(answer, expected);

    // The remote scans ran on the workers, which got the credentials from the coordinator.
    let workers = rows(
        &client,
        "SELECT count(DISTINCT t.worker) FROM system.runtime.tasks t \
         JOIN system.runtime.queries q ON t.query_id = q.query_id \
         WHERE q.query LIKE '%my.quarry_shop.orders%' AND t.worker LIKE 'worker-%'",
    )
    .await
    .unwrap();
    assert_ne!(workers, vec![vec!["0".to_string()]]);

    // The password is in no answer and not in clear in the metastore.
    let shown = rows(&client, "SHOW CATALOGS").await.unwrap();
    assert!(
        shown
            .iter()
            .any(|r| r == &["pg".to_string(), "postgres".to_string()])
    );
    assert!(!format!("{shown:?}").contains(password));
    let explain = rows(&client, "EXPLAIN SELECT * FROM pg.quarry_shop.customers")
        .await
        .unwrap();
    assert!(!format!("{explain:?}").contains(password));
    assert!(!stored_bytes(cluster.data_dir()).contains(password));

    // An error the source raises while a worker reads it keeps the source's SQLSTATE: a
    // PostgreSQL table dropped after the statement was prepared (planned).
    run(psql(PG_DATABASE).args([
        "-c",
        "DROP TABLE IF EXISTS public.vanishing; CREATE TABLE public.vanishing (id int); \
         INSERT INTO public.vanishing VALUES (1)",
    ]))
    .unwrap();
    let statement = client
        .prepare("SELECT id FROM pg.public.vanishing WHERE id > 0")
        .await
        .unwrap();
    run(psql(PG_DATABASE).args(["-c", "DROP TABLE public.vanishing"])).unwrap();
    let error = client.query(&statement, &[]).await.unwrap_err();
    let error = error.as_db_error().expect("an error from the server");
    assert_eq!(
        error.code(),
        &tokio_postgres::error::SqlState::UNDEFINED_TABLE,
        "{error:?}"
    );
    assert!(error.message().contains("vanishing"), "{error:?}");
}

fn quarry_local(data_dir: &Path, key: &str, sql: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["local", "--no-tpch", "--data-dir"])
        .arg(data_dir)
        .args(["-e", sql])
        .env("QUARRY_MASTER_KEY", key)
        .output()
        .unwrap()
}

/// Whether the shell's table output has a row whose only cell is `value`.
fn has_cell(output: &std::process::Output, value: &str) -> bool {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|l| l.trim_matches(|c| c == '|' || c == ' ') == value)
}

#[test]
fn catalogs_survive_a_restart_and_need_their_master_key() {
    ensure_fixtures().unwrap();
    let data = tempfile::tempdir().unwrap();
    let created = quarry_local(data.path(), MASTER_KEY, &pg_catalog_sql("pg", "s3cret-pw"));
    assert!(created.status.success(), "{created:?}");

    let again = quarry_local(
        data.path(),
        MASTER_KEY,
        "SELECT count(*) FROM pg.quarry_shop.customers",
    );
    assert!(again.status.success(), "{again:?}");
    assert!(has_cell(&again, "8"), "{again:?}");

    let other_key = quarry_local(
        data.path(),
        "a different master key!",
        "SELECT count(*) FROM pg.quarry_shop.customers",
    );
    let stderr = String::from_utf8_lossy(&other_key.stderr);
    assert!(!other_key.status.success());
    assert!(
        stderr.contains("password of catalog \"pg\"") && stderr.contains("different master key"),
        "{stderr}"
    );
}

#[test]
fn a_dead_source_is_reported_by_name_and_leaves_other_catalogs_working() {
    ensure_fixtures().unwrap();
    let data = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: connecting fails at once, naming catalog and address.
    let refused = quarry_local(
        data.path(),
        MASTER_KEY,
        "CREATE CATALOG gone USING postgres WITH (host = '127.0.0.1', port = 9, \
         database = 'x', user = 'u', sslmode = 'disable', connect_timeout = '2s')",
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("postgres catalog \"gone\": cannot connect to 127.0.0.1:9"),
        "{stderr}"
    );
    let works = quarry_local(data.path(), MASTER_KEY, MYSQL_CATALOG);
    assert!(works.status.success(), "{works:?}");
    let count = quarry_local(
        data.path(),
        MASTER_KEY,
        "SELECT count(*) FROM my.quarry_shop.orders",
    );
    assert!(has_cell(&count, "9"), "{count:?}");
}

/// Bump to reload the TPC-H copies in PostgreSQL (`quarry_fed.quarry_tpch`) and MariaDB
/// (`quarry_tpch`).
pub const TPCH_FIXTURE_VERSION: i32 = 1;

/// TPC-H SF 0.01 in both servers, loaded from generated CSV files unless this version is
/// there already.
fn ensure_tpch_sources() -> Result<(), String> {
    static LOADED: Mutex<bool> = Mutex::new(false);
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if *loaded {
        return Ok(());
    }
    ensure_fixtures()?;
    let version = TPCH_FIXTURE_VERSION.to_string();
    let pg_current =
        run(psql(PG_DATABASE).args(["-c", "SELECT max(version) FROM quarry_tpch.fixture_version"]))
            .unwrap_or_default();
    let my_current =
        run(mysql().args(["-e", "SELECT max(version) FROM quarry_tpch.fixture_version"]))
            .unwrap_or_default();
    if pg_current == version && my_current == version {
        *loaded = true;
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tables = quarry_tpch::generate(0.01, quarry_tpch::FileFormat::Csv, dir.path())
        .map_err(|e| e.to_string())?;
    let script = |server| {
        quarry_tpch::load_script(server, &tables, "quarry_tpch", TPCH_FIXTURE_VERSION)
            .map_err(|e| e.to_string())
    };
    if pg_current != version {
        let path = dir.path().join("load_postgres.sql");
        std::fs::write(&path, script(quarry_tpch::SqlServer::Postgres)?)
            .map_err(|e| e.to_string())?;
        run(psql(PG_DATABASE).arg("-f").arg(&path))?;
    }
    if my_current != version {
        let path = dir.path().join("load_mysql.sql");
        std::fs::write(&path, script(quarry_tpch::SqlServer::MySql)?).map_err(|e| e.to_string())?;
        run(mysql()
            .arg("--local-infile=1")
            .arg("-e")
            .arg(format!("source {}", path.display())))?;
    }
    *loaded = true;
    Ok(())
}

/// The rows of `sql` in `session`, as text, sorted (the differential compares contents;
/// ORDER BY is Quarry's own work in every run).
async fn sorted_rows(
    session: &quarry_coordinator::Session,
    sql: &str,
) -> Result<Vec<Vec<String>>, String> {
    let output = session.execute(sql).await.map_err(|e| e.user_message())?;
    let quarry_coordinator::Output::Rows(stream) = output else {
        return Ok(vec![]);
    };
    let batches: Vec<datafusion::arrow::array::RecordBatch> =
        futures::TryStreamExt::try_collect(stream)
            .await
            .map_err(|e| e.to_string())?;
    let mut rows = quarry_coordinator::text_rows(&batches).map_err(|e| e.to_string())?;
    rows.sort();
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_over_postgres_and_mysql_gives_the_answers_of_parquet() {
    tokio::task::spawn_blocking(ensure_tpch_sources)
        .await
        .unwrap()
        .unwrap();
    let (_data, engine) = engine_with_master_key().await;
    quarry_coordinator::ensure_tpch(&engine, 0.01)
        .await
        .unwrap();
    let session = engine.new_session().unwrap();
    session.execute("USE tpch").await.unwrap();
    let mut expected = Vec::new();
    for q in 1..=22 {
        let sql = quarry_tpch::query(q).unwrap();
        expected.push(sorted_rows(&session, sql).await.unwrap());
    }
    session
        .execute(&format!(
            "CREATE CATALOG pg USING postgres WITH (host = '127.0.0.1', database = '{PG_DATABASE}', \
             user = 'postgres', sslmode = 'disable', splits = 3)"
        ))
        .await
        .unwrap();
    session
        .execute(
            "CREATE CATALOG my USING mysql WITH (host = '127.0.0.1', user = 'root', \
             sslmode = 'disabled', splits = 2)",
        )
        .await
        .unwrap();
    let mut failures = Vec::new();
    for catalog in ["pg", "my"] {
        for pushdown in [true, false] {
            for statement in [
                format!("SET datafusion.catalog.default_catalog = '{catalog}'"),
                "SET datafusion.catalog.default_schema = 'quarry_tpch'".to_string(),
                format!("SET quarry.pushdown = {pushdown}"),
            ] {
                session.execute(&statement).await.unwrap();
            }
            for q in 1..=22 {
                let sql = quarry_tpch::query(q).unwrap();
                match sorted_rows(&session, sql).await {
                    Ok(rows) if rows == expected[q - 1] => {}
                    Ok(rows) => failures.push(format!(
                        "{catalog} pushdown={pushdown} Q{q}: {} rows differ from Parquet's {}\n  first: {:?}\n  expected: {:?}",
                        rows.len(),
                        expected[q - 1].len(),
                        rows.first(),
                        expected[q - 1].first()
                    )),
                    Err(e) => failures.push(format!("{catalog} pushdown={pushdown} Q{q}: {e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An engine in a new data directory (dropped with the returned guard), with the tests'
/// master key.
/// SQL shaped as Tableau writes it for PostgreSQL (tests/fixtures/tableau_queries.sql)
/// gives, through the wire protocol, the answers of the PostgreSQL server over the same
/// TPC-H data, as psql prints them.
#[test]
fn tableau_style_sql_gives_the_answers_of_postgresql() {
    ensure_tpch_sources().unwrap();
    let server = crate::pgwire::Server::start();
    let port = server.port.to_string();
    let queries = std::fs::read_to_string(fixture("tableau_queries.sql")).unwrap();
    let queries: Vec<&str> = queries
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
        .collect();
    assert!(queries.len() > 10);
    for query in queries {
        let expected =
            run(psql(PG_DATABASE).args(["-c", &query.replace("SCHEMA", "quarry_tpch")])).unwrap();
        let got = run(Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "tableau",
                "-d",
                "quarry",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-tA", "-X"])
            .args(["-c", &query.replace("SCHEMA", "tpch")]))
        .unwrap();
        assert_eq!(got, expected, "{query}");
    }
}

async fn engine_with_master_key() -> (tempfile::TempDir, quarry_coordinator::Engine) {
    let data = tempfile::tempdir().unwrap();
    let mut config = quarry_coordinator::EngineConfig::new(data.path());
    config.master_key = Some(quarry_connectors::MasterKey::from_passphrase(MASTER_KEY).unwrap());
    let engine = quarry_coordinator::Engine::open(config).await.unwrap();
    (data, engine)
}

/// How many rows a query's output has, or its error as users read it.
async fn row_count(
    output: quarry_coordinator::Result<quarry_coordinator::Output>,
) -> Result<usize, String> {
    match output {
        Ok(quarry_coordinator::Output::Rows(stream)) => {
            futures::TryStreamExt::try_collect::<Vec<_>>(stream)
                .await
                .map(|batches| batches.iter().map(|b| b.num_rows()).sum())
                .map_err(|e| quarry_coordinator::CoordinatorError::from(e).user_message())
        }
        Ok(quarry_coordinator::Output::Done(tag)) => panic!("a query has rows, got {tag}"),
        Err(e) => Err(e.user_message()),
    }
}

/// Times out a scan of `catalog`'s 30-second view and waits until `active` (a count of
/// the source's statements on that view) is 0.
async fn timeout_cancels_the_remote_statement(
    catalog_sql: &str,
    catalog: &str,
    active: fn() -> String,
) {
    tokio::task::spawn_blocking(ensure_fixtures)
        .await
        .unwrap()
        .unwrap();
    let (_data, engine) = engine_with_master_key().await;
    let session = engine.new_session().unwrap();
    session.execute(catalog_sql).await.unwrap();
    session
        .execute("SET statement_timeout = '1s'")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let error = row_count(
        session
            .execute(&format!(
                "SELECT count(*) FROM {catalog}.quarry_shop.slow_numbers"
            ))
            .await,
    )
    .await
    .expect_err("the statement times out");
    assert!(error.contains("statement timeout"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The statement is stopped in the source too, long before its 30 s are up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while active() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the {catalog} statement still runs 10 s after the query was cancelled"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A table changed in the source between planning (Parse) and execution: a retyped column
/// is an error naming it (before, values that no longer fit came back as NULLs), a dropped
/// table an error naming the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_changed_after_planning_is_an_error_that_names_it() {
    tokio::task::spawn_blocking(ensure_fixtures)
        .await
        .unwrap()
        .unwrap();
    run(psql(PG_DATABASE).args([
        "-c",
        "DROP TABLE IF EXISTS public.retyped; \
         CREATE TABLE public.retyped (id int, v int); \
         INSERT INTO public.retyped VALUES (1, 10), (2, 20)",
    ]))
    .unwrap();
    let (_data, engine) = engine_with_master_key().await;
    let session = engine.new_session().unwrap();
    session
        .execute(&pg_catalog_sql("pg", "unused"))
        .await
        .unwrap();
    let sql = "SELECT id, v FROM pg.public.retyped ORDER BY id";
    let run_planned = async |plan| row_count(session.execute_plan(sql, plan).await).await;
    let plan = || async {
        match session.prepare(sql).await.unwrap() {
            quarry_coordinator::Prepared::Plan { plan, .. } => plan,
            other => panic!("a query is planned by DataFusion: {other:?}"),
        }
    };
    assert_eq!(run_planned(plan().await).await, Ok(2));

    let planned = plan().await;
    run(psql(PG_DATABASE).args([
        "-c",
        "ALTER TABLE public.retyped ALTER COLUMN v TYPE text USING 'x' || v",
    ]))
    .unwrap();
    let error = run_planned(planned).await.unwrap_err();
    assert!(
        error.contains("postgres catalog \"pg\": the source changed since the query was planned")
            && error.contains("column \"v\" arrived as Utf8, planned as Int32"),
        "{error}"
    );

    let planned = plan().await;
    run(psql(PG_DATABASE).args(["-c", "DROP TABLE public.retyped"])).unwrap();
    let error = run_planned(planned).await.unwrap_err();
    // With PostgreSQL's code, which the wire front end passes on (pgwire-server errors.rs).
    assert!(
        error.contains("postgres catalog \"pg\"")
            && error.contains("relation \"public.retyped\" does not exist")
            && error.contains("SQLSTATE: 42P01"),
        "{error}"
    );
}

/// Statements of PostgreSQL's that read `slow_numbers` and contain `marker`, still running.
fn postgres_slow_statements(marker: &str) -> String {
    run(psql("postgres").args([
        "-c",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{marker}%slow_numbers%' \
             AND state = 'active' AND pid <> pg_backend_pid()"
        ),
    ]))
    .unwrap()
}

/// How many MySQL statements over slow_numbers whose text has `marker` run now.
fn mysql_slow_statements(marker: &str) -> String {
    run(mysql().args([
        "-e",
        &format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE INFO LIKE '%{marker}%slow_numbers%' AND ID <> CONNECTION_ID()"
        ),
    ]))
    .unwrap()
}

/// On a cluster the remote statement runs in a worker's task: a timed-out query stops it in
/// the source too (the coordinator cancels the job, the worker cancels the task, and the
/// task's cancellation ends the scan, which cancels its statement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_query_cancels_its_remote_statements_on_a_worker() {
    tokio::task::spawn_blocking(ensure_fixtures)
        .await
        .unwrap()
        .unwrap();
    let cluster = TestCluster::start(1).await;
    let client = cluster.client().await;
    rows(&client, &pg_catalog_sql("pg", "unused"))
        .await
        .unwrap();
    rows(&client, MYSQL_CATALOG).await.unwrap();
    rows(&client, "SET statement_timeout = '2s'").await.unwrap();
    type Active = fn(&str) -> String;
    let sources: [(&str, Active); 2] = [
        ("pg", postgres_slow_statements),
        ("my", mysql_slow_statements),
    ];
    for (catalog, active) in sources {
        let started = std::time::Instant::now();
        // max(), not count(): the statement is told apart from the local tests'.
        let error = rows(
            &client,
            &format!("SELECT max(n) FROM {catalog}.quarry_shop.slow_numbers"),
        )
        .await
        .expect_err("the statement times out");
        assert!(
            error
                .as_db_error()
                .is_some_and(|e| e.message().contains("statement timeout")),
            "{catalog}: {error:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(15));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while active("max(") != "0" {
            assert!(
                std::time::Instant::now() < deadline,
                "the {catalog} statement still runs 15 s after the query was cancelled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_query_cancels_its_postgres_statement() {
    timeout_cancels_the_remote_statement(&pg_catalog_sql("pg", "unused"), "pg", || {
        postgres_slow_statements("count(")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_query_kills_its_mysql_statement() {
    timeout_cancels_the_remote_statement(MYSQL_CATALOG, "my", || mysql_slow_statements("count("))
        .await;
}
