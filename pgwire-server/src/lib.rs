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
//! Startup ([`startup`]): TLS when a certificate is configured ([`Tls`], `--require-tls`
//! refuses plaintext), then either trust (any user name) or SCRAM-SHA-256 against the
//! metastore's users ([`AuthMode`]).
//!
//! Not built yet (see the pgwire issue): COPY, cursors.

mod backend;
mod errors;
mod fields;
mod server;
mod startup;
mod tls;

pub use server::{DEFAULT_MAX_CONNECTIONS, ServerConfig, serve};
pub use startup::AuthMode;
pub use tls::Tls;
