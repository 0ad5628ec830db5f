//! Crawler benchmark: 10,000 Parquet objects in 1,000 hive partitions on the S3-protocol
//! server (`s3s-fs`), crawled cold, re-crawled unchanged, and re-crawled after one new
//! partition. Reports wall time and the object store requests the crawler made (counted
//! by a wrapper around the S3 client: every GET, ranged or not, and every LIST call with
//! the keys it returned).
//!
//! ```text
//! cargo run --release -p quarry-bench --bin quarry-crawler-bench -- [--partitions 1000] [--files 10]
//! ```

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result as StoreResult,
};
use datafusion::parquet::arrow::ArrowWriter;
use futures::StreamExt;
use futures::stream::BoxStream;
use quarry_crawler::{CrawlerDefinition, CrawlerOptions, CrawlerService};
use quarry_files::{BucketConfig, QuarryObjectStoreRegistry, S3Config};
use quarry_metastore::Metastore;

#[derive(Parser)]
struct Args {
    /// Hive partitions (`dt=.../hour=...`).
    #[arg(long, default_value_t = 1000)]
    partitions: usize,
    /// Parquet files per partition.
    #[arg(long, default_value_t = 10)]
    files: usize,
    /// Where the JSON result is written.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Counts requests to the wrapped store.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ObjectStore>,
    gets: AtomicU64,
    lists: AtomicU64,
    listed: Arc<AtomicU64>,
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl Counting {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.gets.load(Ordering::Relaxed),
            self.lists.load(Ordering::Relaxed),
            self.listed.load(Ordering::Relaxed),
        )
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> StoreResult<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> StoreResult<GetResult> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<ObjectPath>>,
    ) -> BoxStream<'static, StoreResult<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        let listed = Arc::clone(&self.listed);
        self.inner
            .list(prefix)
            .inspect(move |_| {
                listed.fetch_add(1, Ordering::Relaxed);
            })
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&ObjectPath>,
        offset: &ObjectPath,
    ) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> StoreResult<ListResult> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: RenameOptions,
    ) -> StoreResult<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// `s3s-fs` over a folder, stopped (by PID) when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_s3(root: &Path) -> S3Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let binary = std::env::var_os("QUARRY_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("s3s-fs"));
    let child = Command::new(&binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "bench", "--secret-key", "benchbench"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    S3Server { child, port }
}

fn parquet_file(partition: usize, file: usize) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("value", DataType::Int64, false),
    ]));
    let base = (partition * 100 + file * 10) as i64;
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(base..base + 10)),
            Arc::new(StringArray::from_iter_values(
                (0..10).map(|i| format!("user{i}")),
            )),
            Arc::new(Int64Array::from_iter_values((0..10).map(|i| i * 3))),
        ],
    )
    .expect("a batch");
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    out
}

fn partition_folder(i: usize) -> String {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date")
        + chrono::Days::new((i / 24) as u64);
    format!("events/dt={day}/hour={:02}", i % 24)
}

fn write_partition(bucket_dir: &Path, i: usize, files: usize) {
    let dir = bucket_dir.join(partition_folder(i));
    std::fs::create_dir_all(&dir).expect("partition folder");
    for f in 0..files {
        std::fs::write(dir.join(format!("part-{f:05}.parquet")), parquet_file(i, f))
            .expect("a file");
    }
}

#[derive(serde::Serialize)]
struct Measured {
    run: &'static str,
    wall_ms: u128,
    status: String,
    objects_listed: u64,
    objects_read: u64,
    partitions_added: u64,
    get_requests: u64,
    list_calls: u64,
    /// ListObjectsV2 pages at S3's 1,000 keys a page.
    list_pages: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("a temp dir");
    let bucket_dir = dir.path().join("s3/bench");
    let started = Instant::now();
    for i in 0..args.partitions {
        write_partition(&bucket_dir, i, args.files);
    }
    eprintln!(
        "wrote {} objects in {} partitions in {:.1} s",
        args.partitions * args.files,
        args.partitions,
        started.elapsed().as_secs_f64()
    );
    let server = start_s3(&dir.path().join("s3"));

    let config = S3Config {
        default: BucketConfig {
            endpoint: Some(format!("http://127.0.0.1:{}", server.port)),
            region: Some("us-east-1".into()),
            access_key_id: Some("bench".into()),
            secret_access_key: Some("benchbench".into()),
            session_token: None,
            path_style: Some(true),
        },
        buckets: Default::default(),
    };
    let registry = QuarryObjectStoreRegistry::new(config);
    let url = url::Url::parse("s3://bench/").expect("a URL");
    let counting = Arc::new(Counting {
        inner: registry.get_store(&url).expect("the S3 store"),
        gets: AtomicU64::new(0),
        lists: AtomicU64::new(0),
        listed: Arc::new(AtomicU64::new(0)),
    });
    registry.register_store(&url, Arc::clone(&counting) as Arc<dyn ObjectStore>);
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(registry))
        .build_arc()
        .expect("a runtime");
    let metastore = Metastore::open_sqlite(dir.path().join("metastore.db"))
        .await
        .expect("a metastore");
    let service = CrawlerService::new(metastore, runtime, dir.path().join("warehouse"));
    service
        .create(
            CrawlerDefinition {
                name: "bench".into(),
                location: "s3://bench/".into(),
                database: "bench".into(),
                options: CrawlerOptions::default(),
            },
            false,
        )
        .await
        .expect("a crawler");

    let mut results = Vec::new();
    for run in ["cold", "unchanged", "one new partition"] {
        if run == "one new partition" {
            write_partition(&bucket_dir, args.partitions, args.files);
        }
        let before = counting.snapshot();
        let started = Instant::now();
        let record = service.run("bench").await.expect("a run");
        let wall_ms = started.elapsed().as_millis();
        let after = counting.snapshot();
        let listed = after.2 - before.2;
        let measured = Measured {
            run,
            wall_ms,
            status: record.status.clone(),
            objects_listed: record.objects_listed,
            objects_read: record.objects_read,
            partitions_added: record.partitions_added,
            get_requests: after.0 - before.0,
            list_calls: after.1 - before.1,
            list_pages: listed.div_ceil(1000).max(after.1 - before.1),
        };
        eprintln!(
            "{run:>18}: {wall_ms:>6} ms  {} listed, {} read, {} partitions added, {} GET, {} LIST pages  {}",
            measured.objects_listed,
            measured.objects_read,
            measured.partitions_added,
            measured.get_requests,
            measured.list_pages,
            record.status
        );
        if !record.errors.is_empty() {
            eprintln!("errors: {}", record.errors);
        }
        results.push(measured);
    }
    let json = serde_json::to_string_pretty(&results).expect("JSON");
    match &args.out {
        Some(path) => std::fs::write(path, &json).expect("write results"),
        None => println!("{json}"),
    }
    drop(server);
}
