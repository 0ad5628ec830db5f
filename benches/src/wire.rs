//! `quarry-bench wire`: what a client feels of the PostgreSQL protocol. Simple-query
//! round trips (`SELECT 1`: p50, p99, mean) and the rows per second of a large result
//! (TPC-H lineitem, streamed in text), from Quarry's front door in this process and from the
//! PostgreSQL server on this machine, with the same client (tokio-postgres) and the same
//! number of rows. The PostgreSQL copy of lineitem is the one the connector tests load
//! (database quarry_fed, schema quarry_tpch, SF 0.01); `--postgres-table` names another.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde::Serialize;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::{LocalServer, machine, open_engine};

#[derive(clap::Args)]
pub(crate) struct WireArgs {
    /// TPC-H scale factor of Quarry's lineitem (match the PostgreSQL copy's).
    #[arg(long, default_value_t = 0.01)]
    sf: f64,
    /// Timed `SELECT 1` round trips (after 100 untimed).
    #[arg(long, default_value_t = 2000)]
    rounds: usize,
    /// Timed reads of the large result (after one untimed); the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Quarry's data directory; TPC-H is generated on first use.
    #[arg(long, default_value = "target/bench-wire-data")]
    data_dir: PathBuf,
    /// The PostgreSQL server to compare with.
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=quarry_fed"
    )]
    postgres: String,
    /// Its copy of lineitem.
    #[arg(long, default_value = "quarry_tpch.lineitem")]
    postgres_table: String,
    /// JSON results file; default benches/results/wire-sf<SF>.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct ServerResult {
    server: String,
    round_trip_p50_us: f64,
    round_trip_p99_us: f64,
    round_trip_mean_us: f64,
    large_result_rows: usize,
    large_result_seconds: f64,
    rows_per_second: f64,
}

#[derive(Serialize)]
struct Report {
    date: String,
    machine: String,
    build: &'static str,
    rounds: usize,
    repeats: usize,
    results: Vec<ServerResult>,
}

pub(crate) async fn bench(args: WireArgs) -> Result<(), String> {
    let engine = open_engine(&args.data_dir, args.sf).await?;
    let server = LocalServer::start(&engine).await?;
    let quarry = connect(&format!(
        "host=127.0.0.1 port={} user=bench dbname=quarry",
        server.port()
    ))
    .await?;
    let mut results = vec![measure("quarry", &quarry, "tpch.lineitem", &args).await?];
    server.stop().await;
    match connect(&args.postgres).await {
        Ok(postgres) => {
            results.push(measure("postgresql", &postgres, &args.postgres_table, &args).await?)
        }
        Err(e) => eprintln!("PostgreSQL left out ({}): {e}", args.postgres),
    }
    if let [quarry, postgres] = results.as_slice()
        && quarry.large_result_rows != postgres.large_result_rows
    {
        return Err(format!(
            "the large results differ: Quarry {} rows, PostgreSQL {} rows (same scale factor?)",
            quarry.large_result_rows, postgres.large_result_rows
        ));
    }
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "server", "p50 us", "p99 us", "mean us", "rows", "rows/s"
    );
    for r in &results {
        println!(
            "{:<12} {:>10.0} {:>10.0} {:>10.0} {:>10} {:>12.0}",
            r.server,
            r.round_trip_p50_us,
            r.round_trip_p99_us,
            r.round_trip_mean_us,
            r.large_result_rows,
            r.rows_per_second
        );
    }
    let report = Report {
        date: chrono::Utc::now().to_rfc3339(),
        machine: machine(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        rounds: args.rounds,
        repeats: args.repeats,
        results,
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("benches/results/wire-sf{}.json", args.sf)));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&out, json).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("results in {}", out.display());
    Ok(())
}

async fn connect(config: &str) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(config, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(client)
}

async fn measure(
    server: &str,
    client: &Client,
    lineitem: &str,
    args: &WireArgs,
) -> Result<ServerResult, String> {
    for _ in 0..100 {
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut trips = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let start = Instant::now();
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?;
        trips.push(start.elapsed());
    }
    trips.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = trips.iter().map(|d| micros(*d)).sum::<f64>() / trips.len().max(1) as f64;

    let sql = format!("SELECT * FROM {lineitem}");
    let mut rows = read_all(client, &sql).await?;
    let mut times = Vec::with_capacity(args.repeats);
    for _ in 0..args.repeats {
        let start = Instant::now();
        rows = read_all(client, &sql).await?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let seconds = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(ServerResult {
        server: server.to_string(),
        round_trip_p50_us: micros(trips[trips.len() / 2]),
        round_trip_p99_us: micros(trips[trips.len() * 99 / 100]),
        round_trip_mean_us: mean,
        large_result_rows: rows,
        large_result_seconds: seconds,
        rows_per_second: rows as f64 / seconds,
    })
}

/// Streams every row of `sql` (simple protocol, text) and counts them.
async fn read_all(client: &Client, sql: &str) -> Result<usize, String> {
    let stream = client
        .simple_query_raw(sql)
        .await
        .map_err(|e| e.to_string())?;
    futures::pin_mut!(stream);
    let mut rows = 0;
    while let Some(message) = stream.try_next().await.map_err(|e| e.to_string())? {
        if let SimpleQueryMessage::Row(_) = message {
            rows += 1;
        }
    }
    Ok(rows)
}
