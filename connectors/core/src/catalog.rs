//! A connector catalog as a DataFusion catalog. Schema and table *names* come from a
//! snapshot refreshed in the background with a timeout, so listing (`\dt`, `SHOW TABLES`)
//! never waits for a slow or dead source; a table's *columns* are read from the source
//! when a statement uses it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::{ConnectorKind, ConnectorRegistry, RemoteTable, RemoteTableSpec};

/// One `CREATE CATALOG`'s tables.
#[derive(Debug, Clone)]
pub struct RemoteCatalog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    kind: ConnectorKind,
    version: i64,
    registry: Arc<ConnectorRegistry>,
    /// schema → table names, as of the last successful refresh.
    names: RwLock<BTreeMap<String, Vec<String>>>,
}

impl RemoteCatalog {
    pub fn new(
        name: &str,
        kind: ConnectorKind,
        version: i64,
        registry: Arc<ConnectorRegistry>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_string(),
                kind,
                version,
                registry,
                names: RwLock::default(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn kind(&self) -> ConnectorKind {
        self.inner.kind
    }

    pub fn version(&self) -> i64 {
        self.inner.version
    }

    /// Re-reads schema and table names from the source, giving up after `timeout` (the
    /// previous snapshot stays).
    pub async fn refresh(&self, timeout: Duration) -> crate::Result<()> {
        let inner = &self.inner;
        let listing = async {
            let source = inner
                .registry
                .source(&inner.name, Some(inner.version))
                .await?;
            let mut names = BTreeMap::new();
            for schema in source.schemas().await? {
                let tables = source.tables(&schema).await?;
                names.insert(schema, tables);
            }
            Ok::<_, crate::ConnectorError>(names)
        };
        let names = tokio::time::timeout(timeout, listing).await.map_err(|_| {
            crate::ConnectorError::Resolve(format!(
                "catalog \"{}\": listing its tables took longer than {} s",
                inner.name,
                timeout.as_secs()
            ))
        })??;
        *inner.names.write().expect("catalog names lock") = names;
        Ok(())
    }
}

impl CatalogProvider for RemoteCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.inner
            .names
            .read()
            .expect("catalog names lock")
            .keys()
            .cloned()
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let tables = self
            .inner
            .names
            .read()
            .expect("catalog names lock")
            .get(name)
            .cloned()
            // A schema the snapshot does not know yet may exist: its tables are looked up
            // in the source when used.
            .unwrap_or_default();
        Some(Arc::new(RemoteSchema {
            schema: name.to_string(),
            tables,
            catalog: Arc::clone(&self.inner),
        }))
    }
}

#[derive(Debug)]
struct RemoteSchema {
    schema: String,
    tables: Vec<String>,
    catalog: Arc<Inner>,
}

#[async_trait]
impl SchemaProvider for RemoteSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.clone()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let catalog = &self.catalog;
        let source = catalog
            .registry
            .source(&catalog.name, Some(catalog.version))
            .await
            .map_err(DataFusionError::from)?;
        let schema = match source.table_schema(&self.schema, name).await {
            Ok(schema) => schema,
            // Listing (information_schema, psql's \d) reads every table: one with an
            // unsupported column is listed, and refused only when it is read.
            Err(e @ crate::ConnectorError::UnsupportedType { .. }) => {
                let columns = source.column_names(&self.schema, name).await?;
                return Ok(Some(Arc::new(RefusedTable::new(columns, e.to_string()))));
            }
            Err(e) => return Err(e.into()),
        };
        let spec = RemoteTableSpec {
            catalog: catalog.name.clone(),
            version: catalog.version,
            kind: catalog.kind,
            schema: self.schema.clone(),
            table: name.to_string(),
            splits: source.config().splits()?,
            join_pushdown: source.config().join_pushdown()?,
        };
        Ok(Some(Arc::new(RemoteTable::new(spec, schema))))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t == name)
    }
}

/// A remote table Quarry cannot read (a column type without a mapping): listed with its
/// column names, refused with the reason when a query reads it.
#[derive(Debug)]
struct RefusedTable {
    schema: SchemaRef,
    reason: String,
}

impl RefusedTable {
    fn new(columns: Vec<String>, reason: String) -> Self {
        let fields = columns
            .into_iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>();
        Self {
            schema: Arc::new(Schema::new(fields)),
            reason,
        }
    }
}

#[async_trait]
impl TableProvider for RefusedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(self.reason.clone()))
    }
}
