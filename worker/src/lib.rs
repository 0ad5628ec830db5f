//! Quarry's worker side of Ballista: the plan codecs every process registers
//! ([`QuarryLogicalCodec`], [`QuarryPhysicalCodec`]).
//!
//! It also holds what the coordinator and workers share: the cluster secret
//! ([`ClusterSecret`]) and the executor process itself ([`run_worker`], `quarry worker`).
//! See `docs/ballista-embedding.md`.

mod cancel_store;
mod catalogs;
mod cluster;
mod codec;
mod engine;
mod executor;
mod gate;

pub use catalogs::{CATALOG_ACTION, CatalogFlightService, FlightCatalogResolver};
pub use cluster::{CLUSTER_SECRET_ENV, ClusterSecret};
pub use codec::{QuarryLogicalCodec, QuarryPhysicalCodec};
pub use executor::{HEARTBEAT_SECONDS, WorkerOptions, run_worker, worker_id};
