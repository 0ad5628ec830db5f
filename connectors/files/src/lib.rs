//! Quarry's file tables: metastore tables whose data are Parquet, delimited text, JSON or
//! Avro files on a local disk or S3.
//!
//! ```text
//!   metastore Table ──► MetastoreTable (TableProvider)
//!        │                    │ scan(): partitions from the metastore, pruned by the
//!        │                    │ query's filters, files listed per partition location
//!        ▼                    ▼
//!   HiveType ──► Arrow    DataSourceExec (Parquet/CSV/JSON/Avro source, partition values
//!                          attached to each file)
//! ```
//!
//! * [`types`] maps Hive types to Arrow types and back.
//! * [`QuarryObjectStoreRegistry`] hands out object stores for `file://` and per-bucket
//!   configured `s3://` locations.
//! * [`MetastoreTable`] is the `TableProvider` for every file-backed metastore table.

mod error;
mod format;
mod scan;
mod schema_check;
mod store;
mod table;
pub mod types;

pub use error::{FilesError, Result};
pub use format::{file_format_for, serde_defaults};
pub use scan::MetastoreScanExec;
pub use schema_check::{readable_as, restore_schema_rules};
pub use store::{BucketConfig, QuarryObjectStoreRegistry, S3Config, normalize_location};
pub use table::{MetastoreTable, list_data_files, partition_value};
