//! scopewatch-core: the pure, synchronous detection core of scopewatch.
//!
//! Events in, alerts out, snapshot and restore — no threads, no network, no Arrow, no
//! DataFusion, no Kafka (the workspace's layering, see ARCHITECTURE.md). The only files it
//! reads are the TOML documents an operator names (registry, `--rules`, silences).
//!
//! - `event`: the canonical contract (`Event`, the line parser and its `Reject` reasons).
//! - `smart`: the SMART scope algebra and the FHIR request grammar.
//! - `registry`: the optional app registry.
//! - `baseline`: per-app profiles and their statistics.
//! - `detect`: the engine, its rules (declared once in `detect::rules::catalog`) and incidents.
//! - `least_privilege`: granted scopes against exercised permissions, and the narrower grant.
//! - `alert`: the alert record, deterministic ids, silences and the SIEM encodings.

pub mod alert;
pub mod baseline;
pub mod detect;
pub mod event;
pub mod least_privilege;
pub mod registry;
pub mod smart;
