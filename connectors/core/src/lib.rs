//! Quarry's connector catalogs: tables that live in PostgreSQL or MySQL/MariaDB, queried
//! in place and joined with everything else.
//!
//! ```text
//!  CREATE CATALOG sales USING postgres WITH (...)
//!        │  options checked (CatalogConfig), password encrypted (MasterKey), stored in the metastore
//!        ▼
//!  ConnectorRegistry ── per process: catalog name ─► Source (connection pool), rebuilt when
//!        │               the catalog's version changes; workers resolve definitions from
//!        │               the coordinator (CatalogResolver), never from plans
//!        ▼
//!  RemoteTable (TableProvider) ── scan(): projection, filters, limit rendered as one remote
//!        │                        SELECT in the source's dialect (pushdown)
//!        │  SourcePushdown (optimizer rule): joins and aggregates of one catalog's tables
//!        │  become one statement, read through a RemoteQuery (TableProvider)
//!        ▼
//!  RemoteScanExec ── plain data {catalog, version, SQL per split, schema}: travels to
//!                    workers, which open the SQL through their own registry
//! ```
//!
//! What each source owns (options, identifier quoting, literals, which predicates can be
//! pushed without changing results) is its [`Dialect`]; the rest is shared.

mod catalog;
mod config;
mod error;
mod federate;
mod pushdown;
mod registry;
mod scan;
mod secret;
mod source;
mod table;

pub use catalog::RemoteCatalog;
pub use config::{CatalogConfig, CatalogWire, ConnectorKind, QuarryOptions};
pub use error::{ConnectorError, Result};
pub use federate::{RemoteQuery, SourcePushdown};
pub use pushdown::Dialect;
pub use registry::{CatalogResolver, ConnectorRegistry};
pub use scan::{RemoteScanExec, TaskCancellation, schema_from_bytes, schema_to_bytes};
pub use secret::{MASTER_KEY_ENV, MasterKey};
pub use source::Source;
pub use table::{RemoteTable, RemoteTableSpec};
