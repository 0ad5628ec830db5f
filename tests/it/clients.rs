//! The drivers tools connect with, against `quarry local --listen`: pgjdbc (Java), psycopg2,
//! SQLAlchemy's inspector with pandas, psycopg 3, and pyodbc over psqlODBC. Each client is a
//! small program under `tests/clients/` that checks the answers it gets and exits non-zero with
//! the first mismatch; scripts/test.sh installs the drivers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::pgwire::Server;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Asserts the program succeeded and, when given, printed `done` (its last check passed).
fn assert_ran(what: &str, out: Output, done: Option<&str>) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(done) = done {
        assert!(
            stdout.lines().any(|l| l == done),
            "{what} did not finish its checks: {stdout}"
        );
    }
}

#[test]
fn pgjdbc_prepared_statements_and_database_metadata() {
    let server = Server::start();
    let jar = "/usr/share/java/postgresql.jar";
    assert!(
        Path::new(jar).exists(),
        "{jar} missing: scripts/test.sh installs libpostgresql-jdbc-java"
    );
    let classes = tempfile::tempdir().unwrap();
    let javac = Command::new("javac")
        .args(["-cp", jar, "-d"])
        .arg(classes.path())
        .arg(clients_dir().join("JdbcClient.java"))
        .output()
        .expect("javac runs");
    assert_ran("javac", javac, None);
    let classpath = format!("{jar}:{}", classes.path().display());
    let out = Command::new("java")
        .args(["-cp", &classpath, "JdbcClient", &server.port.to_string()])
        .output()
        .expect("java runs");
    assert_ran("pgjdbc client", out, Some("jdbc ok"));
}

#[test]
fn psycopg2_sqlalchemy_pandas_and_psycopg3() {
    let server = Server::start();
    let out = Command::new("python3")
        .arg(clients_dir().join("python_clients.py"))
        .arg(server.port.to_string())
        .output()
        .expect("python3 runs");
    assert_ran("python clients", out, Some("python clients ok"));
}

#[test]
fn pyodbc_over_psqlodbc() {
    let server = Server::start();
    let out = Command::new("python3")
        .arg(clients_dir().join("odbc_client.py"))
        .arg(server.port.to_string())
        .output()
        .expect("python3 runs");
    assert_ran("pyodbc client", out, Some("odbc ok"));
}
