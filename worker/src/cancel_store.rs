//! A task's view of the object stores: each read first asks whether the task was
//! cancelled, and fails if it was.
//!
//! CSV, JSON and Avro scans open their files through the executing task's object stores,
//! so a cancelled task's scan fails at its next read, or its next chunk of a whole-file
//! read, even where it runs in the shuffle writer's detached task (see `engine.rs`).
//! Parquet scans hold a store of their own and are covered there.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;
use url::Url;

type StoreResult<T> = datafusion::object_store::Result<T>;

/// The process's object stores, each wrapped in a [`CancellableStore`] for one task.
#[derive(Debug)]
pub(crate) struct CancellableStores {
    inner: Arc<dyn ObjectStoreRegistry>,
    cancelled: CancellationToken,
}

impl CancellableStores {
    pub(crate) fn new(inner: Arc<dyn ObjectStoreRegistry>, cancelled: CancellationToken) -> Self {
        Self { inner, cancelled }
    }
}

impl ObjectStoreRegistry for CancellableStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        Ok(Arc::new(CancellableStore {
            inner: self.inner.get_store(url)?,
            cancelled: self.cancelled.clone(),
        }))
    }
}

/// An object store that refuses reads and writes once its task is cancelled.
#[derive(Debug)]
struct CancellableStore {
    inner: Arc<dyn ObjectStore>,
    cancelled: CancellationToken,
}

impl CancellableStore {
    fn go_on(&self) -> StoreResult<()> {
        if self.cancelled.is_cancelled() {
            Err(cancelled_error())
        } else {
            Ok(())
        }
    }
}

fn cancelled_error() -> datafusion::object_store::Error {
    datafusion::object_store::Error::Generic {
        store: "quarry",
        source: "the query was cancelled".into(),
    }
}

impl fmt::Display for CancellableStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait::async_trait]
impl ObjectStore for CancellableStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> StoreResult<PutResult> {
        self.go_on()?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.go_on()?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        self.go_on()?;
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if head {
            return Ok(result);
        }
        // A whole-file read (CSV, JSON) is one request: its body is watched chunk by chunk.
        let (meta, range, attributes) = (
            result.meta.clone(),
            result.range.clone(),
            result.attributes.clone(),
        );
        let cancelled = self.cancelled.clone();
        let body = result.into_stream().map(move |chunk| {
            if cancelled.is_cancelled() {
                Err(cancelled_error())
            } else {
                chunk
            }
        });
        Ok(GetResult {
            payload: GetResultPayload::Stream(body.boxed()),
            meta,
            range,
            attributes,
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> StoreResult<Vec<Bytes>> {
        self.go_on()?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<Path>>,
    ) -> BoxStream<'static, StoreResult<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        self.go_on()?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> StoreResult<()> {
        self.go_on()?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> StoreResult<()> {
        self.go_on()?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
    use datafusion::object_store::memory::InMemory;
    use datafusion::object_store::path::Path;
    use datafusion::object_store::{ObjectStore, ObjectStoreExt};
    use tokio_util::sync::CancellationToken;
    use url::Url;

    use super::CancellableStores;

    #[tokio::test]
    async fn reads_fail_once_the_task_is_cancelled() {
        let url = Url::parse("memory://bucket").unwrap();
        let registry = Arc::new(DefaultObjectStoreRegistry::new());
        let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        registry.register_store(&url, Arc::clone(&memory));
        let path = Path::from("t/part-0.csv");
        memory.put(&path, vec![1u8, 2, 3].into()).await.unwrap();

        let cancelled = CancellationToken::new();
        let stores = CancellableStores::new(registry, cancelled.clone());
        let store = stores.get_store(&url).unwrap();
        assert_eq!(store.get_range(&path, 0..2).await.unwrap().as_ref(), [1, 2]);
        // A whole-file read under way when the task is cancelled stops too.
        let reading = store.get(&path).await.unwrap();
        cancelled.cancel();
        assert!(reading.bytes().await.is_err());
        let error = store.get_range(&path, 0..2).await.unwrap_err();
        assert!(
            error.to_string().contains("the query was cancelled"),
            "{error}"
        );
        assert!(store.get_ranges(&path, &[0..1, 1..2]).await.is_err());
        assert!(store.head(&path).await.is_err());
    }
}
