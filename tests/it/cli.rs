//! The `quarry` command: persistence across restarts, script options, error reporting.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn quarry(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["local", "--no-tpch", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .output()
        .expect("quarry runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn definitions_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let events = files.path().join("events");
    std::fs::create_dir_all(events.join("dt=2026-11-01")).unwrap();
    std::fs::write(events.join("dt=2026-11-01/a.csv"), "1,alpha\n2,beta\n").unwrap();
    let other = files.path().join("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("b.csv"), "3,gamma\n").unwrap();

    let setup = format!(
        "CREATE DATABASE sales COMMENT 'kept';
         CREATE EXTERNAL TABLE sales.events (id int, name string) PARTITIONED BY (dt date)
           ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' STORED AS TEXTFILE LOCATION '{events}';
         MSCK REPAIR TABLE sales.events;
         ALTER TABLE sales.events ADD PARTITION (dt='2026-11-02') LOCATION '{other}';
         CREATE VIEW sales.named AS SELECT name, dt FROM sales.events WHERE id > 1;",
        events = events.display(),
        other = other.display()
    );
    let first = quarry(data.path(), &["-e", &setup]);
    assert!(first.status.success(), "{}", stderr(&first));

    let second = quarry(
        data.path(),
        &[
            "--format",
            "csv",
            "-e",
            "SHOW DATABASES; SHOW PARTITIONS sales.events; SELECT * FROM sales.named ORDER BY name",
        ],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        stdout(&second),
        "database_name\ndefault\nsales\n\
         partition\ndt=2026-11-01\ndt=2026-11-02\n\
         name,dt\nbeta,2026-11-01\ngamma,2026-11-02\n"
    );
}

#[test]
fn statements_come_from_standard_input_when_it_is_not_a_terminal() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["local", "--no-tpch", "--format", "csv", "--data-dir"])
        .arg(data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 1 AS one;\nSELECT 'a;b' AS two\n;")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "one\n1\ntwo\na;b\n");
}

#[test]
fn a_bad_statement_is_reported_and_the_rest_still_runs() {
    let data = tempfile::tempdir().unwrap();
    let output = quarry(
        data.path(),
        &[
            "--format",
            "csv",
            "-e",
            "SELECT * FROM nowhere.t; SELECT 2 AS still_running",
        ],
    );
    assert!(
        !output.status.success(),
        "a failed statement makes the exit code non-zero"
    );
    assert!(
        stderr(&output).contains("nowhere"),
        "error names the missing object: {}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "still_running\n2\n");
}

#[test]
fn table_output_is_aligned_with_a_row_count() {
    let data = tempfile::tempdir().unwrap();
    let output = quarry(data.path(), &["-e", "SELECT 1 AS n, 'x' AS s"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("| n | s |"), "{text}");
    assert!(text.contains("(1 row, "), "{text}");
}

#[test]
fn tpch_generate_writes_every_table() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args([
            "tpch", "generate", "--sf", "0.001", "--format", "csv", "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    for table in quarry_tpch::TABLES {
        let file = out.path().join(table).join("part-1.csv");
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.lines().count() > 1, "{table} has rows");
    }
}

#[test]
fn a_postgres_metastore_is_shared_by_processes() {
    // The database `quarry_metastore_test` is created by the metastore crate's tests and
    // here when missing; this test only adds and drops its own metastore database.
    let server = std::env::var("QUARRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432".into());
    let created = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "root", "-d", "postgres", "-qAtc"])
        .arg("SELECT 1 FROM pg_database WHERE datname = 'quarry_metastore_test'")
        .output()
        .expect("psql runs");
    if !String::from_utf8_lossy(&created.stdout).contains('1') {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "root",
                "-d",
                "postgres",
                "-qc",
                "CREATE DATABASE quarry_metastore_test",
            ])
            .output();
    }
    let url = format!("{server}/quarry_metastore_test");
    let db = format!("cli_{}", std::process::id());
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = quarry(
        one.path(),
        &[
            "--metastore-url",
            &url,
            "-e",
            &format!("CREATE DATABASE {db}"),
        ],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    // Another data directory, same metastore: the database is there.
    let second = quarry(
        two.path(),
        &[
            "--metastore-url",
            &url,
            "--format",
            "csv",
            "-e",
            &format!("SHOW DATABASES LIKE '{db}'; DROP DATABASE {db}"),
        ],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(stdout(&second), format!("database_name\n{db}\n"));
}
