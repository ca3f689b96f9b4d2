//! What a rule reports about one event, before incidents group findings into alerts.

use crate::alert::{Category, FrameworkRef, Severity};
use crate::event::{Text, Timestamp};

use super::rules::catalog::{Grade, RuleId, Score};

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
    /// A finding of `rule` about `client_id` at `time`, with the category and grade its catalog
    /// entry declares; the rule fills in what it saw (struct update syntax).
    pub fn new(rule: RuleId, client_id: Text, time: Timestamp) -> Finding {
        let info = rule.info();
        let mut finding = Finding {
            client_id,
            rule,
            cause: String::new(),
            category: info.category,
            severity: info.grade.severity,
            score: 0,
            time,
            span: None,
            summary: String::new(),
            observed: serde_json::Value::Null,
            baseline: serde_json::Value::Null,
            token_id: None,
            example_request: None,
            references: Vec::new(),
        };
        finding.grade(&info.grade);
        finding
    }

    /// Graded as the case its rule's catalog entry marks (broad scopes, a patient-bound
    /// token, …) instead of the usual one, when `marked`.
    pub fn marked_if(mut self, marked: bool) -> Finding {
        if let (true, Some(grade)) = (marked, self.rule.info().marked) {
            self.grade(&grade);
        }
        self
    }

    /// Scored by the tail probability of what was observed (rules graded `by p-value`).
    pub fn tail_probability(mut self, p: f64) -> Finding {
        debug_assert!(self.rule.info().grade.score == Score::TailProbability);
        self.score = Score::of_tail(p);
        self
    }

    fn grade(&mut self, grade: &Grade) {
        self.severity = grade.severity;
        if let Score::Fixed(score) = grade.score {
            self.score = score;
        }
        self.references = grade.references.to_vec();
    }

    /// Where the finding's period starts.
    pub fn about(&self) -> Timestamp {
        self.span.map_or(self.time, |(start, _)| start)
    }

    /// The last instant of the finding's period.
    pub fn about_end(&self) -> Timestamp {
        self.span.map_or(self.time, |(_, end)| Timestamp(end.0 - 1))
    }
}
