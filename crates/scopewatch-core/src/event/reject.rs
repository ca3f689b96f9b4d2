//! Why a line was not accepted as an event.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A coarse class of rejection, for counts by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    NotUtf8,
    InvalidJson,
    TruncatedJson,
    NotAnObject,
    MissingField,
    WrongType,
    InvalidValue,
    DuplicateField,
    LineTooLong,
    ReadError,
    /// Parsed, but older than the allowed lateness behind events already processed.
    Late,
    /// Parsed, but dated before 1970 or further in the future than `--max-ahead-hours`: it
    /// must not move the event-time frontier.
    TimeOutOfWindow,
    /// Parsed, but beyond a memory bound of the core (a new app over `--max-apps`).
    OverLimit,
}

impl RejectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::NotUtf8 => "not_utf8",
            RejectKind::InvalidJson => "invalid_json",
            RejectKind::TruncatedJson => "truncated_json",
            RejectKind::NotAnObject => "not_an_object",
            RejectKind::MissingField => "missing_field",
            RejectKind::WrongType => "wrong_type",
            RejectKind::InvalidValue => "invalid_value",
            RejectKind::DuplicateField => "duplicate_field",
            RejectKind::LineTooLong => "line_too_long",
            RejectKind::ReadError => "read_error",
            RejectKind::Late => "late",
            RejectKind::TimeOutOfWindow => "time_out_of_window",
            RejectKind::OverLimit => "over_limit",
        }
    }
}

/// A rejection: its class and a specific, human-readable reason. Reasons never quote patient
/// ids or URLs; they may quote short enum-like values (`time`, `type`, `event`, `method`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub kind: RejectKind,
    pub reason: String,
}

impl Reject {
    pub fn new(kind: RejectKind, reason: impl Into<String>) -> Reject {
        Reject {
            kind,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Reject {}
