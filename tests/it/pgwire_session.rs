//! What a connection keeps and streams over the PostgreSQL protocol: `COPY ... TO STDOUT`,
//! cursors (`DECLARE`/`FETCH`/`MOVE`/`CLOSE`), temporary tables, and Describe of Quarry's
//! own statements, checked with psql, psycopg 3 and tokio-postgres against `quarry local`.

use std::process::Command;

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::pgwire::{Server, run_python};

async fn connect(server: &Server) -> Client {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=tester", server.port),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

/// Rows of a simple query as text (`None` for NULL).
async fn text_rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The command tag's row count of the last statement of a simple query.
async fn tag_rows(client: &Client, sql: &str) -> u64 {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(n),
            _ => None,
        })
        .next_back()
        .expect("a command tag")
}

async fn sqlstate(client: &Client, sql: &str) -> String {
    let error = client
        .simple_query(sql)
        .await
        .expect_err(&format!("{sql} fails"));
    let db = error.as_db_error().expect("an error from the server");
    format!("{} {}", db.code().code(), db.message())
}

/// A value as PostgreSQL's CSV writes it (NULL is the empty string, unquoted).
fn csv_field(value: &Option<String>) -> String {
    match value {
        None => String::new(),
        Some(v) if v.is_empty() || v.contains([',', '"', '\n', '\r']) || v == "\\." => {
            format!("\"{}\"", v.replace('"', "\"\""))
        }
        Some(v) => v.clone(),
    }
}

fn csv(header: &[&str], rows: &[Vec<Option<String>>]) -> String {
    let mut out = String::new();
    if !header.is_empty() {
        out.push_str(&header.join(","));
        out.push('\n');
    }
    for row in rows {
        out.push_str(&row.iter().map(csv_field).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_stdout_streams_text_and_csv_to_psql() {
    let server = Server::start();
    let client = connect(&server).await;

    // CSV with a header, the old syntax psql's \copy sends; the expected text comes from
    // the same query's rows.
    let query = "SELECT n_nationkey, n_name, n_comment FROM tpch.nation ORDER BY n_nationkey";
    let nations = text_rows(&client, query).await;
    let expected = csv(&["n_nationkey", "n_name", "n_comment"], &nations);
    let out = server.psql(&format!("COPY ({query}) TO STDOUT WITH CSV HEADER"));
    assert_eq!(stdout_of(&out), expected);
    let out = server.psql(&format!(
        "COPY ({query}) TO STDOUT (FORMAT csv, HEADER true)"
    ));
    assert_eq!(stdout_of(&out), expected);

    // psql's \copy writes a client-side file through COPY ... TO STDOUT.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nation.csv");
    let out = server.psql(&format!(
        "\\copy ({query}) to '{}' csv header",
        file.display()
    ));
    assert!(
        stdout_of(&out).contains(&format!("COPY {}", nations.len())),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);

    // PostgreSQL's quoting and escaping, NULL markers and delimiters.
    let tricky = "SELECT 1 AS a, CAST(NULL AS VARCHAR) AS b, 'x,y' AS c, 'say \"hi\"' AS d, \
                  '' AS e, 'tab\there' AS f, 'back\\slash' AS g";
    let out = server.psql(&format!("COPY ({tricky}) TO STDOUT (FORMAT csv, HEADER)"));
    assert_eq!(
        stdout_of(&out),
        "a,b,c,d,e,f,g\n1,,\"x,y\",\"say \"\"hi\"\"\",\"\",tab\there,back\\slash\n"
    );
    let out = server.psql(&format!("COPY ({tricky}) TO STDOUT"));
    assert_eq!(
        stdout_of(&out),
        "1\t\\N\tx,y\tsay \"hi\"\t\ttab\\there\tback\\\\slash\n"
    );
    let out = server.psql(&format!(
        "COPY ({tricky}) TO STDOUT (FORMAT csv, DELIMITER '|', NULL 'NULL', FORCE_QUOTE (a))"
    ));
    assert_eq!(
        stdout_of(&out),
        "\"1\"|NULL|x,y|\"say \"\"hi\"\"\"||tab\there|back\\slash\n"
    );

    // A whole table, in text format, batch after batch.
    let rows = text_rows(
        &client,
        "SELECT r_regionkey, r_name, r_comment FROM tpch.region",
    )
    .await;
    let expected: String = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or_else(|| "\\N".into()))
                .collect::<Vec<_>>()
                .join("\t")
                + "\n"
        })
        .collect();
    let out = server.psql("COPY tpch.region TO STDOUT");
    assert_eq!(stdout_of(&out), expected);
    let out = server.psql("COPY tpch.region (r_name) TO STDOUT WITH (FORMAT csv)");
    let names: String = rows
        .iter()
        .map(|r| r[1].clone().unwrap_or_default() + "\n")
        .collect();
    assert_eq!(stdout_of(&out), names);

    // A large result streams: every lineitem row arrives.
    let count = text_rows(&client, "SELECT count(*) FROM tpch.lineitem").await[0][0]
        .clone()
        .unwrap();
    let out = server.psql("COPY (SELECT l_orderkey, l_linenumber FROM tpch.lineitem) TO STDOUT");
    let lines = stdout_of(&out).lines().count();
    assert_eq!(lines.to_string(), count);

    // tokio-postgres reads the same stream through its copy-out API.
    let stream = client
        .copy_out("COPY (SELECT r_name FROM tpch.region ORDER BY 1) TO STDOUT")
        .await
        .unwrap();
    use futures::TryStreamExt;
    let chunks: Vec<_> = stream.try_collect().await.unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c.as_ref()).into_owned())
        .collect();
    let mut sorted: Vec<String> = rows.iter().map(|r| r[1].clone().unwrap()).collect();
    sorted.sort();
    assert_eq!(text, sorted.join("\n") + "\n");

    // An error after rows were sent ends the copy as in PostgreSQL: psql writes the rows,
    // then reports the error.
    let out = server.psql(
        "COPY (SELECT CAST(CASE WHEN v > 500000 THEN 'x' ELSE '1' END AS INT) \
         FROM generate_series(1, 1000000) AS t(v)) TO STDOUT",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("ERROR:") && stderr.contains("'x'"),
        "{stderr}"
    );
    let copied = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(
        copied > 0 && copied <= 500000,
        "{copied} rows before the error"
    );

    // What COPY does not do is refused with feature_not_supported, naming it.
    let refused = sqlstate(&client, "COPY tpch.nation FROM STDIN").await;
    assert!(
        refused.starts_with("0A000") && refused.contains("COPY FROM is not supported"),
        "{refused}"
    );
    let refused = sqlstate(&client, "COPY tpch.nation TO '/tmp/nation.txt'").await;
    assert!(
        refused.starts_with("0A000") && refused.contains("COPY TO a server file is not supported"),
        "{refused}"
    );
    let refused = sqlstate(&client, "COPY tpch.nation TO STDOUT (FORMAT binary)").await;
    assert!(refused.starts_with("0A000"), "{refused}");
    let refused = sqlstate(&client, "COPY (SELECT * FROM tpch.nope) TO STDOUT").await;
    assert!(refused.starts_with("42P01"), "{refused}");
    // The connection goes on.
    assert_eq!(
        text_rows(&client, "SELECT 1").await,
        vec![vec![Some("1".to_string())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_fetch_move_and_close_with_postgresql_errors() {
    let server = Server::start();
    let client = connect(&server).await;
    let query = "SELECT n_nationkey, n_name FROM tpch.nation ORDER BY n_nationkey";
    let all = text_rows(&client, query).await;
    assert_eq!(all.len(), 25);

    client.simple_query("BEGIN").await.unwrap();
    assert_eq!(
        client
            .simple_query(&format!("DECLARE c NO SCROLL CURSOR FOR {query}"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(text_rows(&client, "FETCH 2 FROM c").await, all[0..2]);
    assert_eq!(text_rows(&client, "FETCH FORWARD 3 IN c").await, all[2..5]);
    assert_eq!(tag_rows(&client, "MOVE 5 FROM c").await, 5);
    assert_eq!(text_rows(&client, "FETCH NEXT FROM c").await, all[10..11]);
    assert_eq!(text_rows(&client, "FETCH ALL FROM c").await, all[11..]);
    assert!(text_rows(&client, "FETCH c").await.is_empty());
    assert_eq!(
        sqlstate(&client, "DECLARE c CURSOR FOR SELECT 1").await,
        "42P03 cursor \"c\" already exists"
    );
    assert_eq!(
        sqlstate(&client, "FETCH BACKWARD 1 FROM c").await.get(..5),
        Some("0A000")
    );
    client.simple_query("CLOSE c").await.unwrap();
    assert_eq!(
        sqlstate(&client, "FETCH 1 FROM c").await,
        "34000 cursor \"c\" does not exist"
    );
    assert_eq!(
        sqlstate(&client, "CLOSE nope").await,
        "34000 cursor \"nope\" does not exist"
    );

    // COMMIT closes the cursors of its transaction block declared WITHOUT HOLD.
    client
        .simple_query(&format!(
            "DECLARE plain CURSOR FOR {query}; DECLARE held CURSOR WITH HOLD FOR {query}"
        ))
        .await
        .unwrap();
    client.simple_query("COMMIT").await.unwrap();
    assert_eq!(
        sqlstate(&client, "FETCH 1 FROM plain").await,
        "34000 cursor \"plain\" does not exist"
    );
    assert_eq!(text_rows(&client, "FETCH 1 FROM held").await, all[0..1]);

    // The extended protocol describes a FETCH with the cursor's column types.
    let rows = client.query("FETCH 3 FROM held", &[]).await.unwrap();
    let keys: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let expected: Vec<i64> = all[1..4]
        .iter()
        .map(|r| r[0].as_ref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(rows[0].columns()[1].name(), "n_name");
    client.simple_query("CLOSE ALL").await.unwrap();
    assert!(
        sqlstate(&client, "FETCH 1 FROM held")
            .await
            .starts_with("34000")
    );

    // statement_timeout bounds each FETCH, not the cursor's life: a cursor read after the
    // timeout has passed still works, a FETCH that takes longer is stopped with 57014.
    client
        .simple_query("SET statement_timeout = '1s'")
        .await
        .unwrap();
    client
        .simple_query(&format!("DECLARE later CURSOR WITH HOLD FOR {query}"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(text_rows(&client, "FETCH ALL FROM later").await, all);
    client
        .simple_query(
            "DECLARE long CURSOR WITH HOLD FOR SELECT count(*), sum(a.l_quantity * b.l_discount) \
             FROM tpch.lineitem a JOIN tpch.lineitem b ON a.l_suppkey = b.l_suppkey",
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let stopped = sqlstate(&client, "FETCH 1 FROM long").await;
    assert_eq!(
        stopped,
        "57014 canceling statement due to statement timeout"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    client
        .simple_query("CLOSE ALL; SET statement_timeout = 0")
        .await
        .unwrap();

    // A cancel request stops a running FETCH.
    client
        .simple_query(
            "DECLARE long CURSOR WITH HOLD FOR SELECT count(*), sum(a.l_quantity * b.l_discount) \
             FROM tpch.lineitem a JOIN tpch.lineitem b ON a.l_suppkey = b.l_suppkey",
        )
        .await
        .unwrap();
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let started = std::time::Instant::now();
    let stopped = sqlstate(&client, "FETCH 1 FROM long").await;
    canceller.await.unwrap();
    assert_eq!(stopped, "57014 canceling statement due to user request");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    client.simple_query("CLOSE long").await.unwrap();

    // psql pages through a result with a cursor when FETCH_COUNT is set; the output is
    // the same as without.
    let plain = stdout_of(&server.psql(query));
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-U", "anyone", "-d", "anydb", "-X", "-A", "-F", ","])
        .args(["-v", "ON_ERROR_STOP=1", "-v", "FETCH_COUNT=4", "-c", query])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), plain);
}

#[test]
fn psycopg_copy_and_server_side_cursors() {
    let server = Server::start();
    let script = format!(
        r#"
import psycopg
with psycopg.connect("host=127.0.0.1 port={port} user=bob dbname=x") as conn:
    cur = conn.cursor()
    query = "SELECT l_orderkey, l_linenumber, l_quantity FROM tpch.lineitem WHERE l_orderkey < 2000 ORDER BY 1, 2"
    cur.execute(query)
    expected = cur.fetchall()
    expected_shape = [(d.name, d.type_code) for d in cur.description]
    # COPY TO STDOUT through psycopg's copy API
    with cur.copy("COPY (" + query + ") TO STDOUT (FORMAT csv)") as copy:
        data = b"".join(bytes(chunk) for chunk in copy).decode()
    lines = data.splitlines()
    print("copy", len(lines) == len(expected), lines[0] == ",".join(str(v) for v in expected[0]))
    conn.commit()
    # A named (server-side) cursor: DECLARE, then FETCH FORWARD itersize at a time.
    with conn.cursor(name="big") as named:
        named.itersize = 100
        named.execute(query)
        shape = [(d.name, d.type_code) for d in named.description]
        got = list(named)
    print("description", shape == expected_shape, shape[0][0])
    print("named", got == expected, len(got) == len(expected))
    conn.commit()
    # fetchmany and scroll forward on a server-side cursor with a parameter.
    with conn.cursor(name="some") as named:
        named.execute("SELECT n_name FROM tpch.nation WHERE n_regionkey = %s ORDER BY 1", (1,))
        first = named.fetchmany(2)
        named.scroll(1)
        rest = named.fetchall()
    cur.execute("SELECT n_name FROM tpch.nation WHERE n_regionkey = 1 ORDER BY 1")
    names = cur.fetchall()
    print("some", first == names[:2], rest == names[3:])
    conn.commit()
    # Binary results through a server-side cursor.
    with conn.cursor(name="bin", binary=True) as named:
        named.execute(query)
        print("binary", named.fetchall() == expected)
    conn.commit()
    # A missing cursor is 34000.
    try:
        cur.execute("FETCH 1 FROM nope")
    except psycopg.Error as e:
        print("error", e.sqlstate)
"#,
        port = server.port
    );
    assert_eq!(
        run_python(&script),
        "copy True True\n\
         description True l_orderkey\n\
         named True True\nsome True True\nbinary True\nerror 34000\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_tables_belong_to_their_session() {
    let server = Server::start();
    let a = connect(&server).await;
    let b = connect(&server).await;

    let count = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone().unwrap();
    let asia = count(text_rows(&a, "SELECT count(*) FROM tpch.nation WHERE n_regionkey = 2").await);
    assert_eq!(
        tag_rows(
            &a,
            "CREATE TEMP TABLE asia AS SELECT n_nationkey, n_name FROM tpch.nation WHERE n_regionkey = 2",
        )
        .await
        .to_string(),
        asia
    );
    assert_eq!(
        count(text_rows(&a, "SELECT count(*) FROM asia").await),
        asia
    );
    // A join of a temporary table with a metastore table.
    let joined = text_rows(
        &a,
        "SELECT count(*) FROM asia JOIN tpch.supplier ON s_nationkey = n_nationkey",
    )
    .await;
    let direct = text_rows(
        &a,
        "SELECT count(*) FROM tpch.nation JOIN tpch.supplier ON s_nationkey = n_nationkey \
         WHERE n_regionkey = 2",
    )
    .await;
    assert_eq!(joined, direct);

    // SELECT ... INTO TEMP, and CREATE TEMP TABLE with columns filled by INSERT.
    a.simple_query("SELECT r_name INTO TEMP TABLE regions FROM tpch.region")
        .await
        .unwrap();
    assert_eq!(
        count(text_rows(&a, "SELECT count(*) FROM regions").await),
        count(text_rows(&a, "SELECT count(*) FROM tpch.region").await)
    );
    a.simple_query("CREATE TEMPORARY TABLE notes (id bigint, note varchar)")
        .await
        .unwrap();
    a.simple_query("INSERT INTO notes VALUES (1, 'one'), (2, 'two')")
        .await
        .unwrap();
    assert_eq!(
        text_rows(&a, "SELECT note FROM notes ORDER BY id").await,
        vec![vec![Some("one".into())], vec![Some("two".into())]]
    );
    // Tableau's form: LOCAL (ignored, as in PostgreSQL) and ON COMMIT PRESERVE ROWS, which
    // is what Quarry's temporary tables do; the other ON COMMIT actions are refused.
    a.simple_query(
        "CREATE LOCAL TEMPORARY TABLE \"#Tableau_3_Filter\" (\"k\" BIGINT) ON COMMIT PRESERVE ROWS",
    )
    .await
    .unwrap();
    a.simple_query("DROP TABLE \"#Tableau_3_Filter\"")
        .await
        .unwrap();
    let refused = sqlstate(&a, "CREATE TEMP TABLE gone (k int) ON COMMIT DROP").await;
    assert!(
        refused.starts_with("0A000") && refused.contains("ON COMMIT DROP"),
        "{refused}"
    );
    // Listed in this session's information_schema.
    assert_eq!(
        text_rows(
            &a,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'pg_temp' \
             ORDER BY 1",
        )
        .await,
        vec![
            vec![Some("asia".into())],
            vec![Some("notes".into())],
            vec![Some("regions".into())]
        ]
    );

    // And in its pg_catalog, which psql's \d and drivers read.
    let in_pg_class = "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'asia'";
    assert_eq!(count(text_rows(&a, in_pg_class).await), "1");

    // Another session sees none of them.
    assert_eq!(count(text_rows(&b, in_pg_class).await), "0");
    assert!(
        sqlstate(&b, "SELECT * FROM asia")
            .await
            .starts_with("42P01")
    );
    assert!(
        text_rows(
            &b,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'pg_temp'",
        )
        .await
        .is_empty()
    );

    // A temporary table hides a table of the current database of the same name until
    // it is dropped; DROP TABLE drops the temporary one.
    let nations = count(text_rows(&a, "SELECT count(*) FROM tpch.nation").await);
    a.simple_query("USE tpch").await.unwrap();
    a.simple_query("CREATE TEMP TABLE nation AS SELECT * FROM tpch.nation WHERE n_nationkey < 3")
        .await
        .unwrap();
    assert_eq!(
        count(text_rows(&a, "SELECT count(*) FROM nation").await),
        "3"
    );
    assert_eq!(
        count(text_rows(&a, "SELECT count(*) FROM tpch.nation").await),
        nations
    );
    assert_eq!(
        count(text_rows(&b, "SELECT count(*) FROM tpch.nation").await),
        nations
    );
    a.simple_query("DROP TABLE nation").await.unwrap();
    assert_eq!(
        count(text_rows(&a, "SELECT count(*) FROM nation").await),
        nations
    );
    a.simple_query("DROP TABLE asia").await.unwrap();
    assert!(
        sqlstate(&a, "SELECT * FROM asia")
            .await
            .starts_with("42P01")
    );

    // Gone after reconnecting.
    drop(a);
    let again = connect(&server).await;
    assert!(
        sqlstate(&again, "SELECT * FROM regions")
            .await
            .starts_with("42P01")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_of_quarry_statements_returns_their_columns() {
    let server = Server::start();
    let client = connect(&server).await;
    let statement = client.prepare("SHOW TABLES IN tpch").await.unwrap();
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["tab_name"]);
    let rows = client.query(&statement, &[]).await.unwrap();
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(tables.contains(&"lineitem".to_string()), "{tables:?}");

    let rows = client.query("DESCRIBE tpch.nation", &[]).await.unwrap();
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["col_name", "data_type", "comment"]);
    let first: (String, String) = (rows[0].get(0), rows[0].get(1));
    assert_eq!(first, ("n_nationkey".to_string(), "bigint".to_string()));

    let rows = client.query("SHOW DATABASES", &[]).await.unwrap();
    let databases: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(databases.contains(&"tpch".to_string()), "{databases:?}");
    let rows = client.query("SHOW application_name", &[]).await.unwrap();
    assert_eq!(rows[0].columns()[0].name(), "application_name");
}

/// The rows of a statement run in `session`, as text.
async fn session_rows(session: &quarry_coordinator::Session, sql: &str) -> Vec<Vec<String>> {
    use futures::TryStreamExt;
    match session.execute(sql).await.unwrap() {
        quarry_coordinator::Output::Rows(stream) => {
            let batches: Vec<_> = stream.try_collect().await.unwrap();
            quarry_coordinator::text_rows(&batches).unwrap()
        }
        quarry_coordinator::Output::Done(tag) => panic!("{sql}: no rows ({tag})"),
    }
}

/// Whether `sql` would be sent to the workers.
async fn runs_on_workers(session: &quarry_coordinator::Session, sql: &str) -> bool {
    match session.prepare(sql).await.unwrap() {
        quarry_coordinator::Prepared::Plan { plan, .. } => {
            quarry_coordinator::cluster::runs_on_cluster(&plan).unwrap()
        }
        quarry_coordinator::Prepared::Quarry { .. } => panic!("{sql} is not a query"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_tables_on_a_cluster_stay_on_the_coordinator() {
    let _turn = crate::cluster::ONE_CLUSTER_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let engine =
        quarry_coordinator::Engine::open(quarry_coordinator::EngineConfig::new(data.path()))
            .await
            .unwrap();
    quarry_coordinator::ensure_tpch(&engine, 0.01)
        .await
        .unwrap();
    crate::cluster::start_in_process(&engine, data.path(), &quarry_files::S3Config::default())
        .await
        .unwrap();
    let session = engine.new_session().unwrap();
    let fill = "SELECT n_nationkey, n_name FROM tpch.nation WHERE n_regionkey = 2";
    // The query that fills the table reads metastore tables: the workers run it.
    assert!(runs_on_workers(&session, fill).await);
    session
        .execute(&format!("CREATE TEMP TABLE asia AS {fill}"))
        .await
        .unwrap();
    let join = "SELECT count(*), sum(s_acctbal) FROM asia JOIN tpch.supplier \
                ON s_nationkey = n_nationkey";
    // Workers do not have the session's tables: a query reading one runs here.
    assert!(!runs_on_workers(&session, join).await);
    let direct = "SELECT count(*), sum(s_acctbal) FROM tpch.nation JOIN tpch.supplier \
                  ON s_nationkey = n_nationkey WHERE n_regionkey = 2";
    assert!(runs_on_workers(&session, direct).await);
    assert_eq!(
        session_rows(&session, join).await,
        session_rows(&session, direct).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_cursors_and_temporary_tables_through_a_coordinator() {
    use futures::TryStreamExt;
    let cluster = crate::cluster::TestCluster::start(2).await;
    let client = cluster.client().await;
    let query = "SELECT o_orderkey, o_totalprice FROM tpch.orders WHERE o_orderkey < 500 \
                 ORDER BY o_orderkey";
    let rows = text_rows(&client, query).await;
    assert!(!rows.is_empty());

    // COPY of a query the workers run.
    let stream = client
        .copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT csv)"))
        .await
        .unwrap();
    let chunks: Vec<_> = stream.try_collect().await.unwrap();
    let copied: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c.as_ref()).into_owned())
        .collect();
    assert_eq!(copied, csv(&[], &rows));

    // A cursor over it, paged.
    client.simple_query("BEGIN").await.unwrap();
    client
        .simple_query(&format!("DECLARE pages CURSOR FOR {query}"))
        .await
        .unwrap();
    let mut fetched = Vec::new();
    loop {
        let page = text_rows(&client, "FETCH 37 FROM pages").await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 37);
        fetched.extend(page);
    }
    assert_eq!(fetched, rows);
    client.simple_query("COMMIT").await.unwrap();

    // A temporary table filled by the workers, read on the coordinator, by this session only.
    client
        .simple_query(&format!("CREATE TEMP TABLE early AS {query}"))
        .await
        .unwrap();
    assert_eq!(
        text_rows(
            &client,
            "SELECT o_orderkey, o_totalprice FROM early ORDER BY o_orderkey"
        )
        .await,
        rows
    );
    let other = cluster.client().await;
    assert!(
        sqlstate(&other, "SELECT * FROM early")
            .await
            .starts_with("42P01")
    );
}
