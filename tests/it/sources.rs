//! The PostgreSQL and MariaDB servers of this machine as connector sources: fixtures loaded
//! once (keyed by [`FIXTURE_VERSION`]) with the servers' own clients, psql and mysql.
//!
//! The shared suite is `tests/slt/sources/shared.slt.part`, run by `tests/slt/sources_*.slt`
//! over a PostgreSQL catalog, a MySQL catalog and Parquet copies; all three expect the
//! same answers. Connection errors and persistence are tested here.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// Bump after changing tests/fixtures/shop_*.sql: the next run reloads them.
pub const FIXTURE_VERSION: i32 = 2;

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
    let output = command
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
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
    c.args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", database])
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
    let current = run(psql(PG_DATABASE).args([
        "-c",
        "SELECT max(version) FROM quarry_shop.fixture_version",
    ]))
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
    let sql = std::fs::read_to_string(fixture("shop_mysql.sql")).map_err(|e| e.to_string())?;
    let mut child = mysql()
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("mysql: {e}"))?;
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(sql.as_bytes())
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "loading shop_mysql.sql: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
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
