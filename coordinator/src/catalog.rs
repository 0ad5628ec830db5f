//! The `quarry` catalog: the metastore's databases as DataFusion schemas.
//!
//! DataFusion asks for schema and table *names* synchronously, so the catalog keeps a
//! snapshot of names that each statement refreshes first ([`MetastoreCatalog::refresh`]).
//! Table *definitions* are read from the metastore when a statement is planned, so a
//! table changed by another process (a crawler, say) is seen at its next use.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, LazyLock, OnceLock, RwLock, Weak};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionConfig;
use quarry_files::MetastoreTable;
use quarry_metastore::{Metastore, Table, TableType};

/// Name of the catalog holding the metastore's databases.
pub const QUARRY_CATALOG: &str = "quarry";

/// Table property holding the database that was current when a view was created; the
/// view's unqualified names resolve in it.
pub const VIEW_DEFAULT_DATABASE: &str = "quarry.view.default_database";

/// What a view needs to be planned: the catalogs and runtime of the engine.
#[derive(Debug)]
struct ViewContext {
    catalogs: Weak<dyn CatalogProviderList>,
    runtime: Arc<RuntimeEnv>,
    config: SessionConfig,
}

/// DataFusion catalog over the metastore.
#[derive(Debug, Clone)]
pub struct MetastoreCatalog {
    inner: Arc<CatalogInner>,
}

#[derive(Debug)]
struct CatalogInner {
    metastore: Metastore,
    names: RwLock<BTreeMap<String, BTreeSet<String>>>,
    views: OnceLock<ViewContext>,
    /// Schemas that are not metastore databases: `pg_catalog`.
    system: RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl MetastoreCatalog {
    pub fn new(metastore: Metastore) -> Self {
        Self {
            inner: Arc::new(CatalogInner {
                metastore,
                names: RwLock::default(),
                views: OnceLock::new(),
                system: RwLock::default(),
            }),
        }
    }

    /// Lets views be planned: they need the engine's catalogs (held weakly: the list holds
    /// this catalog) and runtime.
    pub fn set_view_context(
        &self,
        catalogs: &Arc<dyn CatalogProviderList>,
        runtime: Arc<RuntimeEnv>,
        config: SessionConfig,
    ) {
        let _ = self.inner.views.set(ViewContext {
            catalogs: Arc::downgrade(catalogs),
            runtime,
            config,
        });
    }

    /// Re-reads database and table names from the metastore.
    pub async fn refresh(&self) -> quarry_metastore::Result<()> {
        let mut names: BTreeMap<String, BTreeSet<String>> = self
            .inner
            .metastore
            .list_databases()
            .await?
            .into_iter()
            .map(|db| (db.name, BTreeSet::new()))
            .collect();
        for (db, table) in self.inner.metastore.list_table_names().await? {
            names.entry(db).or_default().insert(table);
        }
        *self.inner.names.write().expect("catalog names lock") = names;
        Ok(())
    }

    /// Builds the DataFusion provider of a metastore table or view.
    pub async fn provider_for(&self, table: Table) -> Result<Arc<dyn TableProvider>> {
        self.inner.provider_for(table).await
    }
}

impl CatalogInner {
    async fn provider_for(&self, table: Table) -> Result<Arc<dyn TableProvider>> {
        if table.table_type == TableType::VirtualView {
            return self.view_provider(table).await;
        }
        let provider = MetastoreTable::try_new(table, self.metastore.clone())?;
        Ok(Arc::new(provider))
    }

    async fn view_provider(&self, table: Table) -> Result<Arc<dyn TableProvider>> {
        let ctx = self
            .views
            .get()
            .ok_or_else(|| DataFusionError::Internal("view planning is not set up".into()))?;
        let catalogs = ctx
            .catalogs
            .upgrade()
            .ok_or_else(|| DataFusionError::Internal("the engine is shutting down".into()))?;
        let sql = table.view_sql.clone().unwrap_or_default();
        let default_db = table
            .properties
            .get(VIEW_DEFAULT_DATABASE)
            .cloned()
            .unwrap_or_else(|| table.database.clone());
        let mut config = ctx.config.clone();
        config.options_mut().catalog.default_schema = default_db;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(Arc::clone(&ctx.runtime))
            .with_catalog_list(catalogs)
            .with_default_features()
            .build();
        let plan = state.create_logical_plan(&sql).await.map_err(|e| {
            DataFusionError::Plan(format!(
                "view {} cannot be planned: {e}",
                table.qualified_name()
            ))
        })?;
        Ok(Arc::new(ViewTable::new(plan, Some(sql))))
    }
}

impl CatalogProvider for MetastoreCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .names
            .read()
            .expect("catalog names lock")
            .keys()
            .cloned()
            .collect();
        names.extend(
            self.inner
                .system
                .read()
                .expect("system schemas lock")
                .keys()
                .cloned(),
        );
        names
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        // Only system schemas come this way; databases are created through the metastore.
        if name != "pg_catalog" {
            return Err(DataFusionError::NotImplemented(format!(
                "schema {name}: use CREATE DATABASE"
            )));
        }
        // Quarry's relation OIDs and the type modifiers the library leaves out.
        let schema: Arc<dyn SchemaProvider> = match self.inner.views.get() {
            Some(context) => Arc::new(crate::pg_overlay::PgCatalogOverlay::new(
                schema,
                context.catalogs.clone(),
                self.inner.metastore.clone(),
            )),
            None => schema,
        };
        let mut system = self.inner.system.write().expect("system schemas lock");
        Ok(system.insert(name.to_string(), schema))
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(schema) = self
            .inner
            .system
            .read()
            .expect("system schemas lock")
            .get(name)
        {
            return Some(Arc::clone(schema));
        }
        let names = self.inner.names.read().expect("catalog names lock");
        let tables = names.get(name)?.clone();
        Some(Arc::new(DatabaseSchema {
            database: name.to_string(),
            tables,
            catalog: Arc::clone(&self.inner),
        }))
    }
}

/// Names of DataFusion's table functions.
static TABLE_FUNCTIONS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    SessionStateBuilder::new()
        .with_default_features()
        .build()
        .table_functions()
        .keys()
        .cloned()
        .collect()
});

/// One metastore database as a DataFusion schema.
#[derive(Debug)]
struct DatabaseSchema {
    database: String,
    tables: BTreeSet<String>,
    catalog: Arc<CatalogInner>,
}

#[async_trait]
impl SchemaProvider for DatabaseSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.iter().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self
            .catalog
            .metastore
            .get_table(&self.database, name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        match table {
            Some(table) => self.catalog.provider_for(table).await.map(Some),
            // DataFusion looks up every name in FROM as a table first, table functions
            // (`generate_series(1, 3)`) included; they are not missing tables.
            None if TABLE_FUNCTIONS.contains(name) => Ok(None),
            // A typed error rather than `None`: the message names the table as the
            // metastore knows it, and the front ends can map it (SQLSTATE 42P01).
            None => Err(DataFusionError::External(Box::new(
                quarry_metastore::MetastoreError::TableNotFound {
                    database: self.database.clone(),
                    table: name.to_string(),
                },
            ))),
        }
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::NotImplemented(format!(
            "cannot create table {}.{name} this way: use CREATE EXTERNAL TABLE ... LOCATION",
            self.database
        )))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains(name)
    }
}
