//! Runs `tests/slt/*.slt` with the `sqllogictest` crate, each file in a fresh engine (its
//! own data directory), in both modes: embedded (plain DataFusion) and distributed (an
//! in-process scheduler with two workers, over gRPC and Arrow Flight on loopback). Files
//! named `s3*.slt` get an S3-protocol server; files named `sources_*.slt` get the shop
//! fixtures in PostgreSQL and MariaDB (see `sources.rs`).
//!
//! `QUARRY_SLT_COMPLETE=1` rewrites the expected results after a deliberate change;
//! `QUARRY_SLT_FILTER=name` runs only files whose name contains `name`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use futures::TryStreamExt;
use quarry_coordinator::{CoordinatorError, Engine, EngineConfig, Output, Session};
use quarry_files::{BucketConfig, S3Config};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::servers::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, S3Server};

/// A statement error as the runner sees it: the user-facing message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SqlError(String);

impl From<CoordinatorError> for SqlError {
    fn from(e: CoordinatorError) -> Self {
        SqlError(e.user_message())
    }
}

struct QuarryDb {
    session: Session,
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() || matches!(data_type, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

/// Rows as the runner compares them: empty strings as `(empty)`, and a one-column value of
/// several lines (SHOW CREATE TABLE) as one row per line.
fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SqlError> {
    let rows = quarry_coordinator::text_rows(batches).map_err(|e| SqlError(e.to_string()))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if let [value] = row.as_slice()
            && value.contains('\n')
        {
            out.extend(value.lines().map(|l| vec![l.to_string()]));
            continue;
        }
        out.push(
            row.into_iter()
                .map(|v| {
                    if v.is_empty() {
                        "(empty)".to_string()
                    } else {
                        v
                    }
                })
                .collect(),
        );
    }
    Ok(out)
}

#[async_trait]
impl sqllogictest::AsyncDB for QuarryDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        match self.session.execute(sql).await? {
            Output::Done(_) => Ok(DBOutput::StatementComplete(0)),
            Output::Rows(stream) => {
                let schema = stream.schema();
                let batches: Vec<RecordBatch> = stream
                    .try_collect()
                    .await
                    .map_err(|e| SqlError::from(CoordinatorError::from(e)))?;
                Ok(DBOutput::Rows {
                    types: schema
                        .fields()
                        .iter()
                        .map(|f| column_type(f.data_type()))
                        .collect(),
                    rows: rows_of(&batches)?,
                })
            }
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "quarry-local"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// Results name the runner's per-file temporary folder as `$__TEST_DIR__`, as queries do.
fn normalize(text: &String) -> String {
    let text = sqllogictest::default_normalizer(text);
    let temp = std::env::temp_dir()
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string();
    let marker = format!("{temp}/.tmp");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(&marker) {
        out.push_str(&rest[..at]);
        let after = &rest[at + marker.len()..];
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        out.push_str("$__TEST_DIR__");
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let filter = std::env::var("QUARRY_SLT_FILTER").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(&filter))
        })
        .collect();
    files.sort();
    files
}

/// How a file's engine executes queries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Local,
    Cluster,
}

async fn run_file(path: &Path, mode: Mode) -> Result<(), String> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let data_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let s3 = name.starts_with("s3").then(S3Server::start);
    let mut config = EngineConfig::new(data_dir.path());
    // Fixed partitioning keeps plans (EXPLAIN output) the same on every machine.
    config.target_partitions = Some(4);
    if let Some(server) = &s3 {
        // Every bucket goes to the local server (none may reach the network); bucket
        // "badcreds" has a wrong secret.
        let local = BucketConfig {
            endpoint: Some(server.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some(S3_ACCESS_KEY.into()),
            secret_access_key: Some(S3_SECRET_KEY.into()),
            session_token: None,
            path_style: Some(true),
        };
        let wrong_secret = BucketConfig {
            secret_access_key: Some("wrong".into()),
            ..local.clone()
        };
        config.s3 = S3Config {
            default: local.clone(),
            buckets: [
                (S3_BUCKET.to_string(), local),
                ("badcreds".to_string(), wrong_secret),
            ]
            .into(),
        };
    }
    // Catalog passwords are sealed with a key of the test's own, not the user's key file.
    config.master_key =
        Some(quarry_connectors::MasterKey::from_passphrase("sqllogictest master key").unwrap());
    if name.starts_with("sources_") {
        tokio::task::spawn_blocking(crate::sources::ensure_fixtures)
            .await
            .map_err(|e| e.to_string())??;
    }
    let s3_config = config.s3.clone();
    let engine = Engine::open(config).await.map_err(|e| e.user_message())?;
    if mode == Mode::Cluster {
        crate::cluster::start_in_process(&engine, data_dir.path(), &s3_config).await?;
    }
    let mut runner = sqllogictest::Runner::new(|| {
        let session = engine.new_session();
        async move {
            Ok::<_, SqlError>(QuarryDb {
                session: session.map_err(SqlError::from)?,
            })
        }
    });
    runner.with_column_validator(sqllogictest::default_column_validator);
    runner.with_normalizer(normalize);
    if let Some(server) = &s3 {
        runner.set_var("S3_ROOT".into(), server.root.to_string_lossy().into_owned());
    }
    if std::env::var_os("QUARRY_SLT_COMPLETE").is_some() {
        runner
            .update_test_file(
                path,
                " ",
                sqllogictest::default_validator,
                normalize,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| format!("{name}: {e}"))
    } else {
        let label = match mode {
            Mode::Local => "local",
            Mode::Cluster => "cluster",
        };
        runner
            .run_file_async(path)
            .await
            .map_err(|e| format!("{name} ({label}): {e}"))
    }
}

#[test]
fn sqllogictest_files() {
    run_all(Mode::Local);
}

#[test]
fn sqllogictest_files_on_a_cluster() {
    run_all(Mode::Cluster);
}

/// Runs every file, each in a runtime of its own: dropping it stops that file's scheduler
/// and workers.
fn run_all(mode: Mode) {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files matched");
    let mut failures = Vec::new();
    for file in &files {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        if let Err(e) = runtime.block_on(run_file(file, mode)) {
            failures.push(e);
        }
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
