//! Crawler faults: the object store going away in the middle of a run: the listing worked, reads fail. The
//! run must fail cleanly (recorded as FAILED, naming the object) and leave every table as
//! it was.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use datafusion::parquet::arrow::ArrowWriter;
use futures::stream::BoxStream;
use quarry_crawler::{CrawlerDefinition, CrawlerOptions, CrawlerService, DeleteBehavior};
use quarry_metastore::Metastore;

/// The local file system, whose reads fail once `down` is set (as a server that stopped
/// answering after the listing).
#[derive(Debug)]
struct FlakyStore {
    inner: LocalFileSystem,
    down: AtomicBool,
}

impl fmt::Display for FlakyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlakyStore")
    }
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(l, p, o).await
    }

    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if self.down.load(Ordering::SeqCst) {
            return Err(datafusion::object_store::Error::Generic {
                store: "flaky",
                source: "connection reset by peer".into(),
            });
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, o).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, o: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, o).await
    }
}

fn write_parquet(path: &std::path::Path, values: Vec<i64>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from(values))],
    )
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test]
async fn a_store_failing_mid_run_fails_the_run_and_touches_no_table() {
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let events = files.path().join("events");
    write_parquet(&events.join("dt=2026-11-01/a.parquet"), vec![1, 2]);
    write_parquet(&events.join("dt=2026-11-02/a.parquet"), vec![3]);

    let store = Arc::new(FlakyStore {
        inner: LocalFileSystem::new(),
        down: AtomicBool::new(false),
    });
    let runtime = RuntimeEnvBuilder::new().build_arc().unwrap();
    runtime.register_object_store(
        &url::Url::parse("file://").unwrap(),
        Arc::clone(&store) as Arc<dyn ObjectStore>,
    );
    let metastore = Metastore::open_sqlite(data.path().join("metastore.db"))
        .await
        .unwrap();
    let service = CrawlerService::new(metastore.clone(), runtime, data.path().join("warehouse"));
    let options = CrawlerOptions {
        delete_behavior: DeleteBehavior::Delete,
        ..Default::default()
    };
    service
        .create(
            CrawlerDefinition {
                name: "c".into(),
                location: events.display().to_string(),
                database: "db".into(),
                options,
            },
            false,
        )
        .await
        .unwrap();
    let first = service.run("c").await.unwrap();
    assert_eq!(first.status, "SUCCEEDED", "{}", first.errors);
    let table = metastore.require_table("db", "events").await.unwrap();
    let partitions = metastore.list_partitions("db", "events").await.unwrap();
    assert_eq!(partitions.len(), 2);

    // New data arrives, one partition vanishes, and the store stops answering reads.
    write_parquet(&events.join("dt=2026-11-03/a.parquet"), vec![4]);
    std::fs::remove_dir_all(events.join("dt=2026-11-01")).unwrap();
    store.down.store(true, Ordering::SeqCst);
    let failed = service.run("c").await.unwrap();
    assert_eq!(failed.status, "FAILED");
    assert!(
        failed.errors.contains("dt=2026-11-03/a.parquet")
            && failed.errors.contains("connection reset"),
        "{}",
        failed.errors
    );
    assert_eq!((failed.partitions_added, failed.partitions_removed), (0, 0));
    // Nothing changed: not the table, not its partitions (the vanished one included).
    assert_eq!(
        metastore.require_table("db", "events").await.unwrap(),
        table
    );
    assert_eq!(
        metastore.list_partitions("db", "events").await.unwrap(),
        partitions
    );

    // Back up: the next run catches up.
    store.down.store(false, Ordering::SeqCst);
    let recovered = service.run("c").await.unwrap();
    assert_eq!(recovered.status, "SUCCEEDED", "{}", recovered.errors);
    assert_eq!(
        (recovered.partitions_added, recovered.partitions_removed),
        (1, 1)
    );
    assert_eq!(recovered.objects_read, 1);
    let runs = service.runs().await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    );
}
