//! `quarry local --listen`: real PostgreSQL clients (psql, psycopg 3) against Quarry.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

/// A `quarry local --listen` (or `quarry coordinator`) process on a free loopback port,
/// stopped (by PID) on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    /// The line announcing the server: how it authenticates, whether it offers TLS.
    pub(crate) banner: String,
    /// What it writes to stderr after the banner, kept for failure messages (and read, so
    /// the server never writes into a full or closed pipe).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    _data: Option<tempfile::TempDir>,
}

impl Server {
    pub(crate) fn start() -> Server {
        Self::start_with(&[])
    }

    /// Like [`Server::start`], with more options for `quarry local`.
    pub(crate) fn start_with(options: &[&str]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut server = Self::launch(&["local", "--tpch-sf", "0.01"], data.path(), options, &[])
            .unwrap_or_else(|stderr| panic!("quarry local did not start: {stderr}"));
        server._data = Some(data);
        server
    }

    /// Runs `quarry COMMAND... --listen 127.0.0.1:PORT --data-dir DATA OPTIONS...` with
    /// `env` until it announces the PostgreSQL protocol; `Err` holds its stderr when it
    /// exits instead.
    pub(crate) fn launch(
        command: &[&str],
        data: &std::path::Path,
        options: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(command)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data)
            .args(options)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut seen = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Some(line) = lines.next() {
            let line = line.unwrap();
            if line.contains("serving the PostgreSQL protocol") {
                let later = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
                let kept = std::sync::Arc::clone(&later);
                std::thread::spawn(move || {
                    for line in lines.map_while(Result::ok) {
                        let mut kept = kept.lock().unwrap();
                        kept.push_str(&line);
                        kept.push('\n');
                    }
                });
                return Ok(Server {
                    child,
                    port,
                    banner: line,
                    stderr: later,
                    _data: None,
                });
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let status = child.wait().unwrap();
        Err(format!("{status}: {seen}"))
    }

    /// What the server has written to stderr since its banner.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn psql(&self, sql: &str) -> std::process::Output {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "anyone",
                "-d",
                "anydb",
            ])
            .args(["-X", "-A", "-F", ",", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs")
    }
}

/// Runs a Python script (psycopg tests) and returns what it printed; fails the test when
/// the script fails.
pub(crate) fn run_python(script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn psql_and_psycopg_query_quarry() {
    let server = Server::start();

    let out =
        server.psql("SELECT n_name, n_regionkey FROM tpch.nation WHERE n_nationkey < 3 ORDER BY 1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n_name,n_regionkey\nALGERIA,0\nARGENTINA,1\nBRAZIL,1\n(3 rows)\n"
    );

    // A bad statement is an error with a SQLSTATE; the server stays up.
    let out = server.psql("SELECT * FROM tpch.missing");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.psql("SHOW TABLES IN tpch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lineitem"));

    // psql's catalog queries: \dt, \d, \dn through pg_catalog.
    let out = server.psql("\\dt tpch.*");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tpch,lineitem,table"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = server.psql("\\d tpch.nation");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("n_nationkey,bigint"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = server.psql("\\dn");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tpch"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = server.psql("CREATE USER carol PASSWORD 'carol-password-1'");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // \df, \dT and \dt+ describe through pg_get_function_result/arguments, obj_description
    // and pg_size_pretty; Quarry has no functions outside pg_catalog, as \df says.
    for (command, expected) in [
        (
            "\\df",
            "List of functions\nSchema,Name,Result data type,Argument data types,Type\n(0 rows)\n",
        ),
        (
            "\\df substr",
            "List of functions\nSchema,Name,Result data type,Argument data types,Type\n\
             pg_catalog,substr,bytea,bytea, integer,func\n\
             pg_catalog,substr,bytea,bytea, integer, integer,func\n\
             pg_catalog,substr,text,text, integer,func\n\
             pg_catalog,substr,text,text, integer, integer,func\n(4 rows)\n",
        ),
        (
            "\\dT integer",
            "List of data types\nSchema,Name,Description\n\
             pg_catalog,integer,-2 billion to 2 billion integer, 4-byte storage\n(1 row)\n",
        ),
        (
            "\\dt+ tpch.region",
            "List of relations\nSchema,Name,Type,Owner,Persistence,Access method,Size,Description\n\
             tpch,region,table,postgres,permanent,,,\n(1 row)\n",
        ),
        // \d+ (ARRAY(subquery), the policy query over the empty pg_policy), \dn+ (ACLs),
        // \l+ (pg_has_role, pg_database_size, shobj_description), \du (Quarry's users).
        (
            "\\d+ tpch.region",
            "Table \"tpch.region\"\n\
             Column,Type,Collation,Nullable,Default,Storage,Compression,Stats target,Description\n\
             r_regionkey,bigint,,,,plain,,,\nr_name,text,,,,extended,,,\nr_comment,text,,,,extended,,,\n",
        ),
        (
            "\\dn+ tpch",
            "List of schemas\nName,Owner,Access privileges,Description\ntpch,postgres,,\n(1 row)\n",
        ),
        (
            "\\l+ quarry",
            "List of databases\nName,Owner,Encoding,Collate,Ctype,ICU Locale,Locale Provider,\
             Access privileges,Size,Tablespace,Description\n\
             quarry,postgres,UTF-8,en_US.UTF-8,en_US.UTF-8,,,,,pg_default,\n(1 row)\n",
        ),
        (
            "\\du carol",
            "List of roles\nRole name,Attributes,Member of\ncarol,,{}\n",
        ),
    ] {
        let out = server.psql(command);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // psycopg 3: extended protocol, bound parameters, prepared statements, binary results,
    // transactions and DEALLOCATE as the driver sends them.
    let script = format!(
        r#"
import psycopg
with psycopg.connect("host=127.0.0.1 port={port} user=bob dbname=x") as conn:
    print(conn.info.server_version, conn.info.parameter_status("standard_conforming_strings"))
    cur = conn.cursor()
    cur.execute("SELECT n_name FROM tpch.nation WHERE n_nationkey < %s AND n_name LIKE %s ORDER BY 1", (5, "A%"))
    print(cur.fetchall())
    for key in (7, 8):
        cur.execute("SELECT n_name FROM tpch.nation WHERE n_nationkey = %s", (key,), prepare=True)
        print(cur.fetchall())
    cur = conn.cursor(binary=True)
    cur.execute("SELECT count(*), sum(o_totalprice), min(o_orderdate) FROM tpch.orders WHERE o_orderdate >= %s::date", ("1995-01-01",))
    print(cur.fetchall())
    for bad in ("SELECT * FROM nope", "SELECT nope FROM tpch.nation", "SELEC 1",
                "SELECT sum(n_name) FROM tpch.nation", "SELECT nope(1)"):
        try:
            cur.execute(bad)
        except psycopg.Error as e:
            print("error", e.sqlstate, str(e).splitlines()[0])
        conn.rollback()
    cur.execute("SELECT 42")
    print(cur.fetchall())
"#,
        port = server.port
    );
    assert_eq!(
        run_python(&script),
        "150000 on\n[('ALGERIA',), ('ARGENTINA',)]\n[('GERMANY',)]\n[('INDIA',)]\n\
         [(8134, Decimal('1148133236.84'), datetime.date(1995, 1, 1))]\n\
         error 42P01 table \"default.nope\" does not exist\n\
         error 42703 column \"nope\" does not exist.\n\
         error 42601 syntax error: sql parser error: Expected: an SQL statement, found: SELEC \
         at Line: 1, Column: 1\n\
         error 42883 No function matches the given name and argument types 'sum(Utf8View)'. \
         You might need to add explicit type casts.\n\
         error 42883 Invalid function 'nope'.\n[(42,)]\n"
    );
}

#[test]
fn quarry_shell_connects_to_a_running_quarry() {
    let server = Server::start();
    let shell = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["shell", "--host", "127.0.0.1", "--port"])
            .arg(server.port.to_string())
            .args(args)
            .output()
            .unwrap()
    };
    let out = shell(&[
        "--format",
        "csv",
        "-e",
        "USE tpch",
        "-e",
        "SELECT n_name, n_regionkey FROM nation WHERE n_nationkey < 2 ORDER BY 1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n_name,n_regionkey\nALGERIA,0\nARGENTINA,1\n"
    );

    // Tables align numbers right, as for a local engine; errors name the object.
    let out = shell(&[
        "-e",
        "SELECT count(*) AS n FROM tpch.region",
        "-e",
        "SELECT * FROM nope",
    ]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| n |\n|---|\n| 5 |\n(1 row, "), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    // Nothing listens there: a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args([
            "shell",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "-e",
            "SELECT 1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to 127.0.0.1:1"));
}

#[test]
fn statement_timeout_stops_a_long_query_with_57014() {
    let server = Server::start();
    let started = std::time::Instant::now();
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "tester",
        ])
        .args(["-X", "-v", "VERBOSITY=verbose"])
        .args(["-c", "SET statement_timeout = '500ms'"])
        .args([
            "-c",
            "SELECT count(*), sum(a.l_quantity * b.l_discount) FROM tpch.lineitem a \
             JOIN tpch.lineitem b ON a.l_suppkey = b.l_suppkey",
        ])
        .args(["-c", "SHOW statement_timeout"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("57014") && stderr.contains("canceling statement due to statement timeout"),
        "{stderr}"
    );
    // The join alone takes tens of seconds in a debug build.
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // A bad value is refused, naming the parameter.
    let out = server.psql("SET statement_timeout = 'soon'");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("statement_timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_the_running_query() {
    let server = Server::start();
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=tester", server.port),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let token = client.cancel_token();
    let started = std::time::Instant::now();
    let query = tokio::spawn(async move {
        let result = client
            .simple_query(
                "SELECT count(*), sum(a.l_quantity * b.l_discount) FROM tpch.lineitem a \
                 JOIN tpch.lineitem b ON a.l_suppkey = b.l_suppkey",
            )
            .await;
        (client, result)
    });
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (client, result) = tokio::time::timeout(std::time::Duration::from_secs(15), query)
        .await
        .expect("the cancelled query ends")
        .unwrap();
    let error = result.expect_err("the query was cancelled");
    let db = error.as_db_error().expect("an error from the server");
    assert_eq!(db.code().code(), "57014");
    assert_eq!(db.message(), "canceling statement due to user request");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // The connection goes on.
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert!(
        rows.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_max_connections_are_refused_with_53300() {
    let server = Server::start_with(&["--max-connections", "2"]);
    let config = format!("host=127.0.0.1 port={} user=tester", server.port);
    let connect = || tokio_postgres::connect(&config, tokio_postgres::NoTls);
    let mut held = Vec::new();
    for _ in 0..2 {
        let (client, connection) = connect().await.unwrap();
        tokio::spawn(connection);
        held.push(client);
    }
    let Err(refused) = connect().await else {
        panic!("a third connection is refused");
    };
    let db = refused.as_db_error().expect("an error from the server");
    assert_eq!(db.code().code(), "53300");
    assert!(
        db.message().contains("too many clients"),
        "{}",
        db.message()
    );
    // psql says so too, and the two connections keep working meanwhile.
    let psql = server.psql("SELECT 1");
    assert!(!psql.status.success());
    assert!(String::from_utf8_lossy(&psql.stderr).contains("too many clients"));
    let one = held[0].simple_query("SELECT 41 + 1").await.unwrap();
    assert!(
        matches!(&one[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("42"))
    );
    // A slot freed is a slot to use.
    drop(held.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match connect().await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client.simple_query("SELECT 1").await.unwrap();
                break;
            }
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "no slot came free after a client left: {e}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
