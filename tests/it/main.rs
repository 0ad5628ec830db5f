//! End-to-end tests of Quarry: one test binary (it links the whole engine once).
//!
//! * `slt`: the sqllogictest files under `tests/slt/`, each in a fresh embedded engine.
//! * `tpch`: the 22 TPC-H queries at SF 0.01 through `quarry local -f`, against the
//!   reference answers.
//! * `cli`: the `quarry` command itself: restart persistence, script options, errors.
//! * `crawler`: crawlers over layouts on the S3-protocol server and on local disk, and an
//!   object store that fails in the middle of a run (`crawler::faults`).
//! * `sources`: PostgreSQL and MariaDB catalogs (fixtures, connection errors, secrets).
//! * `pgwire_session`: COPY TO STDOUT, cursors, temporary tables and Describe over the
//!   PostgreSQL protocol, with psql, psycopg 3 and tokio-postgres.
//! * `clients`: pgjdbc, psycopg2, SQLAlchemy + pandas, psycopg 3 and pyodbc/psqlODBC programs
//!   (`tests/clients/`) checking the answers and metadata they get.
//! * `pgwire_auth`: TLS (`--tls-cert`, `--require-tls`), SCRAM-SHA-256 users and the
//!   coordinator's first administrator, with psql and tokio-postgres.
//! * `pgwire_load`: 200 concurrent connections, malformed/truncated/oversized messages, a client
//!   leaving mid-result, a burst of wrong passwords.
//! * `cluster`: `quarry coordinator` with `quarry worker` processes: TPC-H through the
//!   PostgreSQL front door, system tables, the cluster secret.

mod avro;
mod cli;
mod clients;
mod cluster;
mod crawler;
mod pgwire;
mod pgwire_auth;
mod pgwire_load;
mod pgwire_session;
mod servers;
mod slt;
mod sources;
mod tpch;
