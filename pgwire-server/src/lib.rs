//! Quarry's PostgreSQL wire protocol front end.
//!
//! Each connection gets its own [`quarry_coordinator::Session`]: settings, the current
//! database and prepared statements never leak between clients. pgwire speaks the
//! protocol; arrow-pg turns Arrow batches into rows.
//!
//! ```text
//!   client ──► process_socket ──► QuarryBackend (one per connection)
//!                                   ├ simple query: split, run each statement
//!                                   └ extended: Parse plans once; Bind/Execute binds $n
//!                                      and streams rows, honouring the portal's row limit
//! ```
//!
//! Not built yet (see the pgwire issue): TLS and SCRAM authentication (connections are
//! trusted, as `quarry local` promises for loopback), pg_catalog for client metadata
//! queries, COPY, cursors, cancel requests.

mod backend;
mod errors;
mod fields;
mod server;

pub use server::{DEFAULT_MAX_CONNECTIONS, ServerConfig, serve};
