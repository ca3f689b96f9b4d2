//! `scopewatch simulate`: a seeded, deterministic generator of realistic multi-app token and
//! access logs with injected anomalies (labelled) and benign changes.

mod adversary;
pub mod apps;
mod generate;
pub mod rng;

pub use generate::{simulate, BenignChange, Label, SimConfig, Simulation, START};
