//! Connector catalogs in the coordinator: `CREATE/DROP/SHOW CATALOG`, the catalog list they
//! join, and the resolver that reads their definitions (decrypting passwords) from the
//! metastore for this process and, over the cluster channel, for workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList};
use quarry_connectors::{
    CatalogConfig, CatalogResolver, ConnectorError, ConnectorKind, ConnectorRegistry, MasterKey,
    RemoteCatalog, Source,
};
use quarry_metastore::{CatalogEntry, Metastore};

use crate::session::{Output, Session};
use crate::{CoordinatorError, Result};

/// How long listing a source's tables may take before the previous list is kept.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often connector catalogs' table lists are refreshed in the background.
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Names no connector catalog may take.
const RESERVED: &[&str] = &[
    crate::catalog::QUARRY_CATALOG,
    "system",
    "datafusion",
    "pg_catalog",
    "information_schema",
];

/// The engine's catalogs: `quarry`, `system`, and connector catalogs, which come and go.
#[derive(Debug, Default)]
pub struct CatalogList {
    catalogs: RwLock<BTreeMap<String, Arc<dyn CatalogProvider>>>,
}

impl CatalogList {
    fn deregister(&self, name: &str) {
        self.catalogs
            .write()
            .expect("catalog list lock")
            .remove(name);
    }

    /// The connector catalogs, for refreshing.
    fn remote(&self) -> Vec<RemoteCatalog> {
        self.catalogs
            .read()
            .expect("catalog list lock")
            .values()
            .filter_map(|c| c.as_ref().downcast_ref::<RemoteCatalog>().cloned())
            .collect()
    }
}

impl CatalogProviderList for CatalogList {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.catalogs
            .write()
            .expect("catalog list lock")
            .insert(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.catalogs
            .read()
            .expect("catalog list lock")
            .keys()
            .cloned()
            .collect()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        self.catalogs
            .read()
            .expect("catalog list lock")
            .get(name)
            .cloned()
    }
}

/// Reads catalog definitions from the metastore and opens their sealed passwords.
#[derive(Debug)]
pub struct MetastoreResolver {
    metastore: Metastore,
    key_file: Option<PathBuf>,
    key: Mutex<Option<MasterKey>>,
}

impl MetastoreResolver {
    pub fn new(metastore: Metastore, key: Option<MasterKey>, key_file: Option<PathBuf>) -> Self {
        Self {
            metastore,
            key_file,
            key: Mutex::new(key),
        }
    }

    /// The master key, loaded on first need (a metastore without passwords never needs one).
    fn key(&self) -> quarry_connectors::Result<MasterKey> {
        let mut key = self.key.lock().expect("master key lock");
        if let Some(key) = key.as_ref() {
            return Ok(key.clone());
        }
        let loaded = MasterKey::load(self.key_file.as_deref())?;
        *key = Some(loaded.clone());
        Ok(loaded)
    }

    fn config(&self, entry: CatalogEntry) -> quarry_connectors::Result<CatalogConfig> {
        let kind = ConnectorKind::parse(&entry.connector)?;
        let mut options = entry.options;
        if let Some(sealed) = options.remove("password") {
            let password = self
                .key()?
                .open(&sealed, &format!("password of catalog \"{}\"", entry.name))?;
            let mut config = CatalogConfig::new(&entry.name, kind, options, entry.version)?;
            config.password = Some(password);
            return Ok(config);
        }
        CatalogConfig::new(&entry.name, kind, options, entry.version)
    }
}

#[async_trait]
impl CatalogResolver for MetastoreResolver {
    async fn resolve(&self, catalog: &str) -> quarry_connectors::Result<CatalogConfig> {
        let entry = self
            .metastore
            .get_catalog(catalog)
            .await
            .map_err(|e| ConnectorError::Resolve(format!("catalog \"{catalog}\": {e}")))?
            .ok_or_else(|| ConnectorError::CatalogNotFound(catalog.to_string()))?;
        self.config(entry)
    }
}

/// What the engine keeps for connector catalogs.
#[derive(Debug)]
pub(crate) struct Connectors {
    pub(crate) list: Arc<CatalogList>,
    pub(crate) registry: Arc<ConnectorRegistry>,
    pub(crate) resolver: Arc<MetastoreResolver>,
}

impl Connectors {
    pub(crate) fn new(
        metastore: Metastore,
        key: Option<MasterKey>,
        key_file: Option<PathBuf>,
    ) -> Self {
        let resolver = Arc::new(MetastoreResolver::new(metastore, key, key_file));
        let registry = Arc::new(ConnectorRegistry::new(resolver.clone()));
        Self {
            list: Arc::new(CatalogList::default()),
            registry,
            resolver,
        }
    }

    /// Registers the metastore's connector catalogs and starts refreshing their table
    /// lists in the background (a dead source only leaves its own list empty).
    pub(crate) async fn load(&self) -> Result<()> {
        for entry in self.resolver.metastore.list_catalogs().await? {
            let kind = ConnectorKind::parse(&entry.connector)?;
            self.register(RemoteCatalog::new(
                &entry.name,
                kind,
                entry.version,
                Arc::clone(&self.registry),
            ));
        }
        let list = Arc::downgrade(&self.list);
        tokio::spawn(async move {
            loop {
                let Some(list) = list.upgrade() else { return };
                let catalogs = list.remote();
                drop(list);
                futures::future::join_all(catalogs.iter().map(refresh_quietly)).await;
                tokio::time::sleep(REFRESH_INTERVAL).await;
            }
        });
        Ok(())
    }

    fn register(&self, catalog: RemoteCatalog) {
        self.list
            .register_catalog(catalog.name().to_string(), Arc::new(catalog));
    }
}

async fn refresh_quietly(catalog: &RemoteCatalog) {
    if let Err(e) = catalog.refresh(LIST_TIMEOUT).await {
        tracing::warn!(catalog = catalog.name(), error = %e, "cannot list the catalog's tables");
    }
}

/// `CREATE CATALOG`: the options are checked and the source must answer before the
/// catalog is stored, so a typo in a host or password is reported at once.
pub(crate) async fn create_catalog(
    session: &Session,
    name: String,
    connector: String,
    if_not_exists: bool,
    options: BTreeMap<String, String>,
) -> Result<Output> {
    let engine = session.engine();
    let connectors = engine.connectors();
    if RESERVED.contains(&name.as_str()) {
        return Err(CoordinatorError::Invalid(format!(
            "\"{name}\" is a reserved catalog name"
        )));
    }
    if engine.metastore().get_catalog(&name).await?.is_some() {
        return if if_not_exists {
            Ok(Output::Done("CREATE CATALOG".into()))
        } else {
            Err(quarry_metastore::MetastoreError::CatalogExists(name).into())
        };
    }
    let kind = ConnectorKind::parse(&connector)?;
    let version = chrono::Utc::now().timestamp_millis();
    let config = CatalogConfig::new(&name, kind, options, version)?;
    Source::connect(config.clone()).await?;

    let mut stored = config.options.clone();
    if let Some(password) = &config.password {
        stored.insert("password".into(), connectors.resolver.key()?.seal(password));
    }
    let entry = CatalogEntry {
        name: name.clone(),
        connector: kind.name().to_string(),
        options: stored,
        version,
    };
    if !engine
        .metastore()
        .create_catalog(&entry, if_not_exists)
        .await?
    {
        return Ok(Output::Done("CREATE CATALOG".into()));
    }
    connectors.registry.forget(&name);
    let catalog = RemoteCatalog::new(&name, kind, version, Arc::clone(&connectors.registry));
    refresh_quietly(&catalog).await;
    connectors.register(catalog);
    Ok(Output::Done("CREATE CATALOG".into()))
}

pub(crate) async fn drop_catalog(
    session: &Session,
    name: String,
    if_exists: bool,
) -> Result<Output> {
    let engine = session.engine();
    if !engine.metastore().drop_catalog(&name).await? && !if_exists {
        return Err(ConnectorError::CatalogNotFound(name).into());
    }
    let connectors = engine.connectors();
    connectors.list.deregister(&name);
    connectors.registry.forget(&name);
    Ok(Output::Done("DROP CATALOG".into()))
}

/// Columns of `SHOW CATALOGS`.
pub(crate) const SHOW_CATALOGS_COLUMNS: &[&str] = &["catalog", "connector"];

/// `SHOW CATALOGS`: name and connector; options (and never passwords) stay out.
pub(crate) async fn show_catalogs(session: &Session) -> Result<Output> {
    let mut rows = vec![
        vec![
            crate::catalog::QUARRY_CATALOG.to_string(),
            "metastore".to_string(),
        ],
        vec!["system".to_string(), "system".to_string()],
    ];
    for entry in session.engine().metastore().list_catalogs().await? {
        rows.push(vec![entry.name, entry.connector]);
    }
    rows.sort();
    Output::text_rows(SHOW_CATALOGS_COLUMNS, rows)
}
