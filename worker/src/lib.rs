//! Quarry's worker side of Ballista: the plan codecs every process registers
//! ([`QuarryLogicalCodec`], [`QuarryPhysicalCodec`]).
//!
//! The executor process itself (`quarry worker`) is not built yet; see the distributed issue
//! and `docs/ballista-embedding.md`.

mod codec;

pub use codec::{QuarryLogicalCodec, QuarryPhysicalCodec};
