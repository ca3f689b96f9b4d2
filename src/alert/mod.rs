//! Alerts: the record, ids, silences and encodings are the core crate's
//! (`scopewatch_core::alert`, re-exported here); the `sinks` module writes them to files and Kafka.

pub use scopewatch_core::alert::*;
