//! SQL over access history, alerts and baselines (DataFusion): the history store written by
//! `detect`, the session that registers its tables and UDFs, and result output.

pub mod history;
pub mod output;
pub mod session;
pub mod udf;
pub mod usage;
