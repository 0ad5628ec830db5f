//! Quarry's plans on Ballista: codec round trips, and a real in-process cluster.

mod cluster;
mod codec;
mod fixtures;
