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
//! The front end runs two kinds of statements itself, because their results are
//! protocol matters: `COPY ... TO STDOUT` (`copy.rs`) and SQL cursors (`cursors.rs`), both
//! over the session's ordinary query path (`wire.rs`).
//!
//! Not built yet (see the pgwire issue): COPY FROM.

mod backend;
mod copy;
mod cursors;
mod errors;
mod fields;
mod rows;
mod server;
mod startup;
mod tls;
mod wire;
mod words;

pub use server::{DEFAULT_MAX_CONNECTIONS, ServerConfig, serve};
pub use startup::AuthMode;
pub use tls::Tls;
