//! `quarry-bench federated --sf 1`: TPC-H Q3, Q5, Q10 and Q12 with `orders` and `customer`
//! in PostgreSQL and every other table in Parquet, through Quarry, beside the same queries
//! inside PostgreSQL alone with all eight tables there (same server, same data). Answers
//! of both are checked against the reference answers where the scale factor has them.
//!
//! The PostgreSQL copy is generated once per scale factor into database `quarry_bench`,
//! schema `tpch_sf<SF>` (plain tables, no indexes, analyzed), and reused while its
//! `fixture_version` matches.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use crate::{LocalRunner, Runner, machine, measure, millis, open_engine_with};

/// Bump to reload the PostgreSQL copies.
const FIXTURE_VERSION: i32 = 1;
const QUERIES: [usize; 4] = [3, 5, 10, 12];
/// The tables the federated queries read from PostgreSQL.
const REMOTE_TABLES: [&str; 2] = ["orders", "customer"];

#[derive(clap::Args, Clone)]
pub(crate) struct FederatedArgs {
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Timed runs per query and engine (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Quarry's data directory; TPC-H Parquet is generated there on first use.
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
    /// The PostgreSQL server (its database `quarry_bench` is created when missing).
    #[arg(long, default_value = "127.0.0.1")]
    pg_host: String,
    #[arg(long, default_value_t = 5432)]
    pg_port: u16,
    #[arg(long, default_value = "postgres")]
    pg_user: String,
    /// JSON results file; default benches/results/federated-sf<SF>.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct QueryResult {
    query: usize,
    quarry_median_ms: f64,
    postgres_median_ms: f64,
    quarry_over_postgres: f64,
    rows: usize,
    quarry_answer: &'static str,
    postgres_answer: &'static str,
}

#[derive(Serialize)]
struct Report {
    sf: f64,
    runs: usize,
    machine: String,
    remote_tables: Vec<&'static str>,
    queries: Vec<QueryResult>,
}

const DATABASE: &str = "quarry_bench";

fn schema_name(sf: f64) -> String {
    format!("tpch_sf{sf}").replace('.', "_")
}

fn psql(args: &FederatedArgs, database: &str) -> Command {
    let mut command = Command::new("psql");
    command
        .args(["-h", &args.pg_host, "-p", &args.pg_port.to_string()])
        .args(["-U", &args.pg_user, "-d", database])
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]);
    command
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The eight tables at `args.sf` in PostgreSQL, unless this version is there already.
fn ensure_postgres_copy(args: &FederatedArgs) -> Result<(), String> {
    let exists = output(psql(args, "postgres").args([
        "-c",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"),
    ]))?;
    if exists != "1" {
        output(psql(args, "postgres").args(["-c", &format!("CREATE DATABASE {DATABASE}")]))?;
    }
    let schema = schema_name(args.sf);
    let current = output(psql(args, DATABASE).args([
        "-c",
        &format!("SELECT max(version) FROM {schema}.fixture_version"),
    ]))
    .unwrap_or_default();
    if current == FIXTURE_VERSION.to_string() {
        return Ok(());
    }
    let dir = args.data_dir.join(format!("csv-{schema}"));
    eprintln!(
        "loading TPC-H SF {} into PostgreSQL ({DATABASE}.{schema})",
        args.sf
    );
    let started = Instant::now();
    let tables = quarry_tpch::generate(args.sf, quarry_tpch::FileFormat::Csv, &dir)
        .map_err(|e| e.to_string())?;
    let script = quarry_tpch::load_script(
        quarry_tpch::SqlServer::Postgres,
        &tables,
        &schema,
        FIXTURE_VERSION,
    )
    .map_err(|e| e.to_string())?;
    let path = dir.join("load.sql");
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    let loaded = output(psql(args, DATABASE).arg("-f").arg(&path));
    let _ = std::fs::remove_dir_all(&dir);
    loaded?;
    eprintln!("loaded in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `sql` (a TPC-H query) with `orders` and `customer` read from catalog `pg`.
fn federated_sql(sql: &str, schema: &str) -> String {
    sql.lines()
        .map(|line| {
            let table = line.trim().trim_end_matches(',');
            if REMOTE_TABLES.contains(&table) {
                line.replacen(table, &format!("pg.{schema}.{table}"), 1)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct PostgresRunner {
    client: tokio_postgres::Client,
}

impl Runner for PostgresRunner {
    async fn run(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        crate::simple_query_rows(&self.client, sql).await
    }
}

pub(crate) async fn bench(args: FederatedArgs) -> Result<(), String> {
    let loader = {
        let args = args.clone();
        tokio::task::spawn_blocking(move || ensure_postgres_copy(&args))
    };
    let mut config = quarry_coordinator::EngineConfig::new(&args.data_dir);
    config.master_key = Some(
        quarry_connectors::MasterKey::from_passphrase("quarry-bench-master-key")
            .map_err(|e| e.to_string())?,
    );
    let engine = open_engine_with(config, args.sf).await?;
    loader.await.map_err(|e| e.to_string())??;

    let schema = schema_name(args.sf);
    let mut quarry = LocalRunner {
        session: engine.new_session().map_err(|e| e.user_message())?,
    };
    quarry.run("DROP CATALOG IF EXISTS pg").await?;
    quarry
        .run(&format!(
            "CREATE CATALOG pg USING postgres WITH (host = '{}', port = '{}', database = '{DATABASE}', \
             user = '{}', sslmode = 'disable')",
            args.pg_host, args.pg_port, args.pg_user
        ))
        .await?;
    quarry.run("USE tpch").await?;
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} dbname={DATABASE}",
            args.pg_host, args.pg_port, args.pg_user
        ),
        tokio_postgres::NoTls,
    )
    .await
    .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut postgres = PostgresRunner { client };
    postgres.run(&format!("SET search_path = {schema}")).await?;

    let mut results = Vec::new();
    for n in QUERIES {
        let sql = quarry_tpch::query(n).ok_or_else(|| format!("no TPC-H query {n}"))?;
        let expected = quarry_tpch::answer(args.sf, n);
        let (rows, quarry_answer, quarry_median, _) = measure(
            &mut quarry,
            &federated_sql(sql, &schema),
            expected,
            args.runs,
        )
        .await
        .map_err(|e| format!("q{n} through Quarry: {e}"))?;
        let (_, postgres_answer, postgres_median, _) =
            measure(&mut postgres, sql, expected, args.runs)
                .await
                .map_err(|e| format!("q{n} in PostgreSQL: {e}"))?;
        let (quarry_ms, postgres_ms) = (millis(quarry_median), millis(postgres_median));
        eprintln!(
            "q{n:02}: Quarry {quarry_ms:>9.1} ms ({quarry_answer}), PostgreSQL {postgres_ms:>9.1} ms ({postgres_answer})"
        );
        results.push(QueryResult {
            query: n,
            quarry_median_ms: quarry_ms,
            postgres_median_ms: postgres_ms,
            quarry_over_postgres: (quarry_ms / postgres_ms * 100.0).round() / 100.0,
            rows,
            quarry_answer,
            postgres_answer,
        });
    }
    let report = Report {
        sf: args.sf,
        runs: args.runs,
        machine: machine(),
        remote_tables: REMOTE_TABLES.to_vec(),
        queries: results,
    };
    println!(
        "Federated TPC-H SF {} (orders, customer in PostgreSQL; the rest Parquet) against \
         PostgreSQL alone, median of {} runs after a warm-up, {}",
        report.sf, report.runs, report.machine
    );
    println!();
    println!("| query | Quarry federated ms | PostgreSQL alone ms | ratio | rows | answers |");
    println!("|---:|---:|---:|---:|---:|---|");
    for q in &report.queries {
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {} | {} / {} |",
            q.query,
            q.quarry_median_ms,
            q.postgres_median_ms,
            q.quarry_over_postgres,
            q.rows,
            q.quarry_answer,
            q.postgres_answer
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("benches/results/federated-sf{}.json", args.sf)));
    crate::write_json(&out, &report)?;
    let wrong: Vec<String> = report
        .queries
        .iter()
        .filter(|q| q.quarry_answer == "wrong" || q.postgres_answer == "wrong")
        .map(|q| format!("q{}", q.query))
        .collect();
    if !wrong.is_empty() {
        return Err(format!("wrong answers: {}", wrong.join(", ")));
    }
    Ok(())
}
