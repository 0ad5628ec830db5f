//! Quarry's Hive-compatible metastore.
//!
//! The model follows Hive's: a [`Database`] holds [`Table`]s; a table has columns with Hive
//! types ([`HiveType`]), partition keys, a [`StorageDescriptor`] (location, format, serde
//! properties) and, when partitioned, [`Partition`]s that may live at any location.
//!
//! [`Metastore`] persists the model through sqlx with versioned migrations. SQLite (in WAL
//! mode, so a crawler in another process can share the data directory) is the embedded
//! default. Every mutating call is one transaction: it either happens whole or not at all.
//!
//! ```no_run
//! # async fn demo() -> quarry_metastore::Result<()> {
//! use quarry_metastore::{Database, Metastore};
//! let store = Metastore::open_sqlite("quarry-data/metastore.db").await?;
//! store.create_database(&Database::new("sales", "/data/sales"), true).await?;
//! let tables = store.list_tables("sales").await?;
//! # Ok(()) }
//! ```

mod catalog_store;
mod crawler_store;
mod error;
mod hive_type;
mod model;
mod store;
mod user_store;

pub use catalog_store::CatalogEntry;
pub use crawler_store::{ChangeCounts, CrawlerRecord, CrawlerRun, TableChange};
pub use error::{MetastoreError, Result};
pub use hive_type::{HiveType, StructField};
pub use model::{
    Column, ColumnStatistics, Database, Partition, StorageDescriptor, StorageFormat, Table,
    TableStatistics, TableType, partition_spec,
};
pub use store::{Backend, Metastore};
pub use user_store::{ScramVerifier, UserRecord};
