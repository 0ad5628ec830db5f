//! Quarry's coordinator: sessions, the front parser for Hive DDL, and the `quarry`
//! catalog over the metastore.
//!
//! * [`Engine`] is shared by all sessions of a process: metastore, catalogs, object
//!   stores, defaults.
//! * [`Session`] is one user's connection; [`Session::execute`] runs one statement and
//!   returns an [`Output`]: rows as a stream, or a command tag.
//! * [`front`] parses the statements Quarry owns (Hive DDL, `SHOW`, `USE`, `MSCK`,
//!   `ANALYZE`); everything else is DataFusion's, with the PostgreSQL dialect.
//!
//! ```no_run
//! # async fn demo() -> quarry_coordinator::Result<()> {
//! use quarry_coordinator::{Engine, EngineConfig, Output};
//! let engine = Engine::open(EngineConfig::new("quarry-data")).await?;
//! let session = engine.new_session()?;
//! if let Output::Rows(stream) = session.execute("SELECT 1").await? { /* ... */ }
//! # Ok(()) }
//! ```

mod bootstrap;
pub mod catalog;
pub mod cluster;
mod connectors;
pub mod crawler_statements;
mod ddl;
mod engine;
mod error;
pub mod front;
mod like_escape;
mod origins;
mod pg_datetime;
mod pg_describe;
mod pg_functions;
mod pg_overlay;
mod pg_rewrites;
mod session;
mod show;
pub mod split;
pub mod system;
mod temp;
mod text;
mod to_char;
pub mod users;

pub use bootstrap::ensure_tpch;
pub use cluster::Cluster;
pub use engine::{DEFAULT_DATABASE, Engine, EngineConfig};
pub use error::{CoordinatorError, RemoteFailure, Result, is_undefined_function};
pub use origins::{ColumnDescription, ColumnOrigin, column_label, column_origin, relation_oid};
pub use pg_functions::SERVER_VERSION;
pub use pg_overlay::{declared_type_oid, type_modifier};
pub use session::{Output, Prepared, Session};
pub use text::text_rows;
