//! The runtime: what connects sources, the detection core and the store — the drivers (batch
//! replay, followed files, the Kafka consumer-group service behind the feature `kafka`), the
//! state directory and its checkpoints, metrics — and the sinks every driver writes alerts and
//! dead letters through.

// The lower crates' modules, named as `crate::event`, `crate::sql`, … inside this crate.
use scopewatch_core::{alert, detect, event, registry};
use scopewatch_ingest as ingest;
use scopewatch_store::{baseline, sql};

pub mod pipeline;
pub mod sinks;
