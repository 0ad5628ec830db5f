//! The front door under load and bad input: 200 connections running queries at once,
//! malformed, truncated and oversized protocol messages, a client leaving mid-result and a
//! burst of wrong passwords. Each may cost its own connection, never the server or anyone
//! else's session.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::pgwire::Server;

/// Connects with tokio-postgres, driving the connection in the background.
async fn connect(port: u16, extra: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let config = format!("host=127.0.0.1 port={port} user=tester {extra}");
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
    // A connection that ends in an error says why (a client only sees `Closed`).
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("a tokio-postgres connection ended with an error: {e:?}");
        }
    });
    Ok(client)
}

/// Rows per region of tpch.nation, as the server answers them to one client.
async fn nations_per_region(port: u16) -> Vec<(i64, i64)> {
    let client = connect(port, "").await.expect("the server answers");
    client
        .query(
            "SELECT n_regionkey, count(*) FROM tpch.nation GROUP BY n_regionkey ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_connections_run_queries_at_once() {
    let server = Server::start_with(&["--max-connections", "220"]);
    let port = server.port;
    let expected = nations_per_region(port).await;
    assert_eq!(expected.len(), 5, "{expected:?}");
    // Every client connects first, so all 200 sessions are open at the same time.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let mut clients = JoinSet::new();
    for i in 0..200_i64 {
        let barrier = std::sync::Arc::clone(&barrier);
        let expected = expected.clone();
        clients.spawn(async move {
            let client = connect(port, "")
                .await
                .unwrap_or_else(|e| panic!("client {i} not connected: {e:?}"));
            barrier.wait().await;
            let (region, count) = expected[(i % 5) as usize];
            let row = client
                .query_one(
                    "SELECT count(*), min(n_name) FROM tpch.nation WHERE n_regionkey = $1",
                    &[&region],
                )
                .await
                .unwrap_or_else(|e| panic!("client {i} got no answer: {e:?}"));
            assert_eq!(row.get::<_, i64>(0), count, "client {i}");
            let name: String = row.get(1);
            assert!(!name.is_empty(), "client {i}");
        });
    }
    let mut done = 0;
    while let Some(result) = clients.join_next().await {
        if let Err(e) = result {
            panic!("{e}; the server's stderr:\n{}", server.stderr());
        }
        done += 1;
    }
    assert_eq!(done, 200);
    assert_eq!(nations_per_region(port).await, expected);
}

/// A startup message for protocol 3.0 as user `raw`.
fn startup_message() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608_u32.to_be_bytes());
    for part in ["user", "raw", "database", "quarry"] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend(body);
    message
}

/// A raw connection that has completed startup (read up to the first ReadyForQuery).
async fn started(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&startup_message()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0_u8; 4096];
    while !has_message(&seen, b'Z') {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during startup");
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

/// Whether `bytes` (backend messages, from a message boundary) hold a message of `kind`.
fn has_message(bytes: &[u8], kind: u8) -> bool {
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        if bytes[at] == kind {
            return true;
        }
        at += 1 + len;
    }
    false
}

/// What the server does with one misbehaving connection that sends `send` and then ends its
/// side: the bytes it answers, and whether it closed the connection within 10 s.
async fn answer_to(mut stream: TcpStream, send: &[u8]) -> (Vec<u8>, bool) {
    let _ = stream.write_all(send).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .is_ok();
    (answer, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_truncated_and_oversized_messages_cost_only_their_connection() {
    let server = Server::start();
    let port = server.port;
    let expected = nations_per_region(port).await;
    // A session that stays open through everything below, and must still work after.
    let bystander = connect(port, "").await.unwrap();

    // Startup packets: too short, absurdly long, garbage.
    for packet in [
        vec![0, 0, 0, 3],
        vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
        b"GET / HTTP/1.1\r\nHost: quarry\r\n\r\n".to_vec(),
    ] {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (_, closed) = answer_to(stream, &packet).await;
        assert!(
            closed,
            "a bad startup packet {packet:?} closes its connection"
        );
    }

    let cases: Vec<(&str, Vec<u8>)> = vec![
        // A query claiming 2 GiB, then the client goes away.
        (
            "oversized",
            [&[b'Q'][..], &0x7fff_ffff_u32.to_be_bytes(), b"SELECT 1"].concat(),
        ),
        // A query cut short: 100 bytes announced, 10 sent, then end of stream.
        (
            "truncated",
            [&[b'Q'][..], &100_u32.to_be_bytes(), b"SELECT 1; "].concat(),
        ),
        // A message type the protocol does not have.
        ("unknown type", [&[b'y'][..], &4_u32.to_be_bytes()].concat()),
        // A length smaller than the length field itself.
        ("bad length", [&[b'Q'][..], &2_u32.to_be_bytes()].concat()),
        // Bind to a statement that was never parsed.
        (
            "bind unknown statement",
            [
                &[b'B'][..],
                &16_u32.to_be_bytes(),
                b"\0nope\0",
                &[0, 0, 0, 0, 0, 0][..],
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in cases {
        let stream = started(port).await;
        let (answer, closed) = answer_to(stream, &bytes).await;
        // An ErrorResponse, or the connection closed once the client ended its side.
        assert!(closed || has_message(&answer, b'E'), "{what}: {answer:?}");
        assert_eq!(nations_per_region(port).await, expected, "after {what}");
    }

    // A client that leaves in the middle of a large result.
    let mut stream = started(port).await;
    let query = b"SELECT * FROM tpch.lineitem\0";
    let mut message = vec![b'Q'];
    message.extend_from_slice(&((query.len() + 4) as u32).to_be_bytes());
    message.extend_from_slice(query);
    stream.write_all(&message).await.unwrap();
    let mut buf = vec![0_u8; 64 * 1024];
    let mut got = 0;
    while got < 256 * 1024 {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "rows stream");
        got += n;
    }
    drop(stream);

    assert_eq!(nations_per_region(port).await, expected);
    let one = bystander.query_one("SELECT 40 + 2", &[]).await.unwrap();
    assert_eq!(one.get::<_, i64>(0), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_passwords_leaves_the_right_one_working() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::launch(
        &["local", "--tpch-sf", "0.01"],
        data.path(),
        &["--auth", "scram", "--admin-user", "tester"],
        &[("QUARRY_ADMIN_PASSWORD", "right-Password-1")],
    )
    .expect("quarry local starts");
    let port = server.port;
    let mut attempts = JoinSet::new();
    for i in 0..50 {
        attempts.spawn(async move {
            let error = connect(port, &format!("password=wrong-{i}"))
                .await
                .expect_err("a wrong password is refused");
            error.as_db_error().map(|e| e.code().code().to_string())
        });
    }
    while let Some(code) = attempts.join_next().await {
        assert_eq!(code.unwrap().as_deref(), Some("28P01"));
    }
    let client = connect(port, "password=right-Password-1").await.unwrap();
    let row = client.query_one("SELECT current_user", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "tester");
}
