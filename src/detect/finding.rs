//! What a rule reports about one event, before incidents group findings into alerts.

use crate::alert::{Category, FrameworkRef, Severity};
use crate::event::{Text, Timestamp};

/// One rule firing on one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub client_id: Text,
    pub rule: &'static str,
    pub category: Category,
    pub severity: Severity,
    pub score: u8,
    pub time: Timestamp,
    /// One sentence a SOC analyst understands without the docs.
    pub summary: String,
    pub observed: serde_json::Value,
    pub baseline: serde_json::Value,
    pub token_id: Option<Text>,
    /// PHI-free request shape (see `smart::request::request_shape`).
    pub example_request: Option<String>,
    pub references: &'static [FrameworkRef],
}
