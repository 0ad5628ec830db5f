//! [`Engine`]: what all sessions of one Quarry process share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::CatalogProviderList;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::optimizer::Analyzer;
use datafusion::prelude::{SessionConfig, SessionContext};
use quarry_connectors::{MasterKey, QuarryOptions};
use quarry_crawler::CrawlerService;
use quarry_files::{QuarryObjectStoreRegistry, S3Config, normalize_location};
use quarry_metastore::{Database, Metastore};

use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;

use crate::catalog::{MetastoreCatalog, QUARRY_CATALOG};
use crate::cluster::Cluster;
use crate::connectors::Connectors;
use crate::session::Session;
use crate::system::{RuntimeState, system_catalog};
use crate::temp::{SessionCatalogs, TempTables};
use crate::{CoordinatorError, Result};

/// The database every session starts in; it always exists.
pub const DEFAULT_DATABASE: &str = "default";

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Holds `metastore.db` and the `warehouse/` folder.
    pub data_dir: PathBuf,
    pub s3: S3Config,
    /// DataFusion's `target_partitions`; when unset, the number of cores, but at least
    /// [`MIN_TARGET_PARTITIONS`] in local plans.
    pub target_partitions: Option<usize>,
    /// A shared metastore (`postgres://...`, `mysql://...`); SQLite in the data directory
    /// when unset.
    pub metastore_url: Option<String>,
    /// The key catalog passwords are sealed with; when unset, `QUARRY_MASTER_KEY` or the
    /// key file (`master_key_file`, default `~/.config/quarry/master.key`) on first need.
    pub master_key: Option<MasterKey>,
    pub master_key_file: Option<PathBuf>,
}

/// The fewest partitions a plan is cut into by default. DataFusion's default is the number
/// of cores; on two cores, four partitions ran TPC-H SF 1 about 9 % faster (3.37-3.50 s
/// against 3.62-3.96 s over five runs each, with the same CPU time; why was not isolated,
/// benches/RESULTS.md). Measured on two cores only: above four cores nothing changes.
/// Local plans only: in cluster sessions every partition of a stage is a task, and four
/// made TPC-H on two one-slot workers slower (5.25 s against 4.70 s), so they keep the
/// number of cores.
pub const MIN_TARGET_PARTITIONS: usize = 4;

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            s3: S3Config::default(),
            target_partitions: None,
            metastore_url: None,
            master_key: None,
            master_key_file: None,
        }
    }
}

/// The engine: metastore, catalogs, object stores and session defaults. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

#[derive(Debug)]
struct EngineInner {
    metastore: Metastore,
    catalog: MetastoreCatalog,
    catalogs: Arc<dyn CatalogProviderList>,
    runtime: Arc<RuntimeEnv>,
    config: SessionConfig,
    warehouse: PathBuf,
    /// The query log, and in distributed mode the cluster queries over data tables go to.
    runtime_state: Arc<RuntimeState>,
    crawlers: Arc<CrawlerService>,
    connectors: Connectors,
    /// `target_partitions` of cluster sessions (see [`MIN_TARGET_PARTITIONS`]).
    cluster_partitions: usize,
}

impl Engine {
    /// Opens the data directory (creating it on first use) and its metastore.
    pub async fn open(config: EngineConfig) -> Result<Self> {
        let data_dir = absolute(&config.data_dir)?;
        let warehouse = data_dir.join("warehouse");
        std::fs::create_dir_all(&warehouse).map_err(|e| {
            CoordinatorError::Invalid(format!(
                "cannot create data directory {}: {e}",
                warehouse.display()
            ))
        })?;
        let metastore = match &config.metastore_url {
            Some(url) => Metastore::open_url(url).await?,
            None => Metastore::open_sqlite(data_dir.join("metastore.db")).await?,
        };
        Self::with_metastore(metastore, warehouse, config).await
    }

    /// Builds an engine over an already opened metastore.
    pub async fn with_metastore(
        metastore: Metastore,
        warehouse: PathBuf,
        config: EngineConfig,
    ) -> Result<Self> {
        let default_location = normalize_location(&warehouse.join("default.db").to_string_lossy())?;
        metastore
            .create_database(&default_database(default_location), true)
            .await?;

        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::new(QuarryObjectStoreRegistry::new(config.s3.clone())))
            .build_arc()?;
        let connectors = Connectors::new(
            metastore.clone(),
            config.master_key.clone(),
            config.master_key_file.clone(),
        );
        let mut session_config = SessionConfig::new()
            .with_default_catalog_and_schema(QUARRY_CATALOG, DEFAULT_DATABASE)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            .with_option_extension(QuarryOptions::default())
            .with_extension(Arc::clone(&connectors.registry));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        session_config = session_config.with_target_partitions(
            config
                .target_partitions
                .unwrap_or(cores.max(MIN_TARGET_PARTITIONS)),
        );
        let cluster_partitions = config.target_partitions.unwrap_or(cores);
        let options = session_config.options_mut();
        options.sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        // The session time zone Quarry reports to clients (TimeZone). Without one DataFusion
        // plans `timestamptz` as a timestamp without a time zone.
        options.execution.time_zone = Some("UTC".into());
        // Parquet row filters (`parquet.pushdown_filters`) stay off, DataFusion's default:
        // on, TPC-H SF1 took 5.49 s instead of 4.45 s here (benches/RESULTS.md). Row-group
        // and page-index pruning work either way.

        let catalog = MetastoreCatalog::new(metastore.clone());
        let catalogs: Arc<dyn CatalogProviderList> = connectors.list.clone();
        catalogs.register_catalog(QUARRY_CATALOG.to_string(), Arc::new(catalog.clone()));
        let runtime_state = Arc::new(RuntimeState::default());
        let crawlers = Arc::new(CrawlerService::new(
            metastore.clone(),
            Arc::clone(&runtime),
            warehouse.clone(),
        ));
        let system = system_catalog(&runtime_state);
        system.register_schema(
            "crawler",
            crate::crawler_statements::system_schema(&crawlers),
        )?;
        catalogs.register_catalog("system".to_string(), system);
        catalog.set_view_context(&catalogs, Arc::clone(&runtime), session_config.clone());
        // pg_catalog for plans over the engine's own catalogs (views); each session
        // registers its own, which also lists that session's temporary tables.
        let engine_ctx = SessionContext::new_with_state(
            SessionStateBuilder::new()
                .with_config(session_config.clone())
                .with_runtime_env(Arc::clone(&runtime))
                .with_catalog_list(Arc::clone(&catalogs))
                .with_default_features()
                .build(),
        );
        if let Err(e) = datafusion_pg_catalog::setup_pg_catalog(
            &engine_ctx,
            QUARRY_CATALOG,
            EmptyContextProvider,
        ) {
            tracing::warn!(error = %e, "pg_catalog is not available to views");
        }
        catalog.refresh().await?;
        connectors.load().await?;
        Ok(Self {
            inner: Arc::new(EngineInner {
                metastore,
                catalog,
                catalogs,
                runtime,
                config: session_config,
                warehouse,
                runtime_state,
                crawlers,
                connectors,
                cluster_partitions,
            }),
        })
    }

    pub fn metastore(&self) -> &Metastore {
        &self.inner.metastore
    }

    pub fn catalog(&self) -> &MetastoreCatalog {
        &self.inner.catalog
    }

    pub(crate) fn connectors(&self) -> &Connectors {
        &self.inner.connectors
    }

    pub(crate) fn connector_registry(&self) -> Arc<quarry_connectors::ConnectorRegistry> {
        Arc::clone(&self.inner.connectors.registry)
    }

    /// Resolves connector catalogs for workers (over the cluster's authenticated channel).
    pub fn catalog_resolver(&self) -> Arc<dyn quarry_connectors::CatalogResolver> {
        self.inner.connectors.resolver.clone()
    }

    /// The runtime (object stores, memory, spill) every session of this process shares.
    pub(crate) fn runtime(&self) -> Arc<RuntimeEnv> {
        Arc::clone(&self.inner.runtime)
    }

    /// Sends the queries of sessions created from now on to `cluster`'s workers.
    pub(crate) fn attach_cluster(&self, cluster: Cluster) -> Result<()> {
        self.inner
            .runtime_state
            .cluster
            .set(cluster)
            .map_err(|_| CoordinatorError::Invalid("this engine already has a cluster".into()))
    }

    /// The cluster this engine runs queries on (distributed mode).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.inner.runtime_state.cluster.get()
    }

    /// What `system.runtime.*` reads.
    pub(crate) fn runtime_state(&self) -> &RuntimeState {
        &self.inner.runtime_state
    }

    /// The crawlers of this engine's metastore (`CREATE CRAWLER`, `quarry crawl`, schedules).
    pub fn crawlers(&self) -> &Arc<CrawlerService> {
        &self.inner.crawlers
    }

    /// The local folder where databases without a LOCATION are placed.
    pub fn warehouse(&self) -> &Path {
        &self.inner.warehouse
    }

    /// Default location of a new database: `<warehouse>/<name>.db/`.
    pub fn default_database_location(&self, name: &str) -> Result<String> {
        Ok(normalize_location(
            &self
                .inner
                .warehouse
                .join(format!("{name}.db"))
                .to_string_lossy(),
        )?)
    }

    /// A new session with its own settings, starting in database `default`.
    pub fn new_session(&self) -> Result<Session> {
        let temp = TempTables::new();
        let catalogs = SessionCatalogs::new(
            Arc::clone(&self.inner.catalogs),
            &temp,
            self.inner.metastore.clone(),
        );
        let mut state = SessionStateBuilder::new()
            .with_config(self.inner.config.clone())
            .with_runtime_env(Arc::clone(&self.inner.runtime))
            .with_catalog_list(catalogs)
            .with_default_features()
            .with_analyzer_rules(
                std::iter::once(Arc::new(crate::pg_datetime::DateWithTime) as _)
                    .chain(Analyzer::new().rules)
                    .collect(),
            )
            .with_analyzer_rule(Arc::new(crate::pg_datetime::TimeLiterals))
            .with_optimizer_rule(Arc::new(crate::like_escape::LikeEscape))
            .with_optimizer_rule(Arc::new(quarry_connectors::SourcePushdown))
            .build();
        if let Some(cluster) = self.cluster() {
            state = cluster.upgrade(state)?;
            state.config_mut().options_mut().execution.target_partitions =
                self.inner.cluster_partitions;
        }
        let ctx = SessionContext::new_with_state(state);
        // pg_catalog and the functions PostgreSQL clients call (current_schema(), ...).
        if let Err(e) =
            datafusion_pg_catalog::setup_pg_catalog(&ctx, QUARRY_CATALOG, EmptyContextProvider)
        {
            tracing::warn!(error = %e, "pg_catalog is not available in this session");
        }
        for function in crate::pg_functions::session_functions() {
            ctx.register_udf(function);
        }
        Ok(Session::new(self.clone(), ctx, temp))
    }
}

fn default_database(location: String) -> Database {
    let mut db = Database::new(DEFAULT_DATABASE, location);
    db.description = Some("Default database".into());
    db
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| {
        CoordinatorError::Invalid(format!("bad data directory {}: {e}", path.display()))
    })
}
