//! The process-local registry of live sources. Plans name a catalog and its version; each
//! process (coordinator, worker) turns that into a connection pool here.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::{CatalogConfig, ConnectorError, Result, Source};

/// Where a process learns a catalog's definition: the coordinator reads its metastore,
/// a worker asks the coordinator.
#[async_trait]
pub trait CatalogResolver: Send + Sync + fmt::Debug {
    /// The catalog's current definition, or [`ConnectorError::CatalogNotFound`].
    async fn resolve(&self, catalog: &str) -> Result<CatalogConfig>;
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Source>>>>;

/// Catalog name → connected [`Source`], connected on first use and rebuilt when the
/// catalog is replaced. A failed connection is not remembered: the next query tries again.
#[derive(Debug)]
pub struct ConnectorRegistry {
    resolver: Arc<dyn CatalogResolver>,
    sources: Mutex<HashMap<String, Slot>>,
}

impl ConnectorRegistry {
    pub fn new(resolver: Arc<dyn CatalogResolver>) -> Self {
        Self {
            resolver,
            sources: Mutex::default(),
        }
    }

    pub fn resolver(&self) -> &Arc<dyn CatalogResolver> {
        &self.resolver
    }

    /// The source of `catalog`. With `version`, the catalog must still be that version
    /// (a plan made before `DROP CATALOG` + `CREATE CATALOG` fails instead of reading
    /// another source).
    pub async fn source(&self, catalog: &str, version: Option<i64>) -> Result<Arc<Source>> {
        let slot = Arc::clone(
            self.sources
                .lock()
                .expect("connector registry lock")
                .entry(catalog.to_string())
                .or_default(),
        );
        // One connection attempt per catalog at a time; other catalogs are not held up.
        let mut current = slot.lock().await;
        if let Some(source) = current.as_ref()
            && version.is_none_or(|v| source.config().version == v)
        {
            return Ok(Arc::clone(source));
        }
        let config = self.resolver.resolve(catalog).await?;
        if let Some(v) = version
            && config.version != v
        {
            return Err(ConnectorError::Resolve(format!(
                "catalog \"{catalog}\" was replaced after this query was planned; run it again"
            )));
        }
        let source = Arc::new(Source::connect(config).await?);
        *current = Some(Arc::clone(&source));
        Ok(source)
    }

    /// Drops the pool of `catalog` (after `DROP CATALOG`).
    pub fn forget(&self, catalog: &str) {
        self.sources
            .lock()
            .expect("connector registry lock")
            .remove(catalog);
    }
}
