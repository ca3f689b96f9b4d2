//! What a rule reports about one event, before incidents group findings into alerts.

use crate::alert::{Category, FrameworkRef, Severity};
use crate::event::{Text, Timestamp};

use super::rules::catalog::RuleId;

/// One rule firing on one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub client_id: Text,
    pub rule: RuleId,
    /// What recurs within one incident (PHI-free): for a gap the resource type and interaction,
    /// for a scope rule the scope; empty when the rule has one cause per app. Incidents are
    /// kept per app × rule × cause.
    pub cause: String,
    pub category: Category,
    pub severity: Severity,
    pub score: u8,
    pub time: Timestamp,
    /// The period the finding is about, when it differs from the instant `time` (an hourly
    /// total judged when the hour ends is about that hour). Incident windows follow it.
    pub span: Option<(Timestamp, Timestamp)>,
    /// One sentence a SOC analyst understands without the docs.
    pub summary: String,
    pub observed: serde_json::Value,
    pub baseline: serde_json::Value,
    pub token_id: Option<Text>,
    /// PHI-free request shape (see `smart::request::request_shape`).
    pub example_request: Option<String>,
    pub references: Vec<FrameworkRef>,
}

impl Finding {
    /// Where the finding's period starts.
    pub fn about(&self) -> Timestamp {
        self.span.map_or(self.time, |(start, _)| start)
    }

    /// The last instant of the finding's period.
    pub fn about_end(&self) -> Timestamp {
        self.span.map_or(self.time, |(_, end)| Timestamp(end.0 - 1))
    }
}
