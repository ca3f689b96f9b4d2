//! Alerts: the record, ids, silences and encodings are the core crate's
//! (`scopewatch_core::alert`, re-exported here); `sink` writes them to files and Kafka.

pub use scopewatch_core::alert::*;

pub mod sink;
