//! Connector catalogs (`CREATE CATALOG ... USING postgres`): stored beside the Hive
//! model. Secret options arrive already encrypted; the metastore never sees them in clear.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{from_json, now, to_json};
use crate::{Metastore, MetastoreError, Result};

/// A connector catalog's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    /// `postgres`, `mysql`, ...
    pub connector: String,
    /// Options as given, secret ones sealed by the caller.
    pub options: BTreeMap<String, String>,
    /// Distinguishes a catalog from an earlier one of the same name (creation time in
    /// milliseconds).
    pub version: i64,
}

fn entry_from_row(row: &AnyRow) -> Result<CatalogEntry> {
    let name: String = row.try_get("name")?;
    let options: String = row.try_get("options")?;
    Ok(CatalogEntry {
        options: from_json(&options, || format!("catalog {name}"))?,
        connector: row.try_get("connector")?,
        version: row.try_get("version")?,
        name,
    })
}

impl Metastore {
    /// All connector catalogs, by name.
    pub async fn list_catalogs(&self) -> Result<Vec<CatalogEntry>> {
        sqlx::query(
            self.sql("SELECT name, connector, options, version FROM mst_catalogs ORDER BY name"),
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(entry_from_row)
        .collect()
    }

    /// One catalog, or `None`.
    pub async fn get_catalog(&self, name: &str) -> Result<Option<CatalogEntry>> {
        sqlx::query(
            self.sql("SELECT name, connector, options, version FROM mst_catalogs WHERE name = ?"),
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(entry_from_row)
        .transpose()
    }

    /// Stores a new catalog. Returns false when it existed and `if_not_exists` was given.
    pub async fn create_catalog(&self, entry: &CatalogEntry, if_not_exists: bool) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let exists = sqlx::query(self.sql("SELECT 1 FROM mst_catalogs WHERE name = ?"))
            .bind(&entry.name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(MetastoreError::CatalogExists(entry.name.clone()))
            };
        }
        sqlx::query(self.sql(
            "INSERT INTO mst_catalogs (name, connector, options, version, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(&entry.name)
        .bind(&entry.connector)
        .bind(to_json(&entry.options))
        .bind(entry.version)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a catalog; returns whether it existed.
    pub async fn drop_catalog(&self, name: &str) -> Result<bool> {
        let done = sqlx::query(self.sql("DELETE FROM mst_catalogs WHERE name = ?"))
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
