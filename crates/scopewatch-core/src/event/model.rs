//! The canonical event contract (see docs/event-contract.md and docs/event.schema.json).

use compact_str::CompactString;
use serde::Serialize;

use super::time::Timestamp;
use crate::smart::request::Method;

/// Short identifiers are `CompactString`s: up to 24 bytes they live inline, which saves an
/// allocation per field on the ingest hot path.
pub type Text = CompactString;

/// Fields every event carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Common {
    pub time: Timestamp,
    pub client_id: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Text>,
}

/// What happened to a token at the authorization server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenAction {
    Issued,
    Refreshed,
    Revoked,
    Denied,
    Introspected,
}

impl TokenAction {
    pub const ALL: [TokenAction; 5] = [
        TokenAction::Issued,
        TokenAction::Refreshed,
        TokenAction::Revoked,
        TokenAction::Denied,
        TokenAction::Introspected,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAction::Issued => "issued",
            TokenAction::Refreshed => "refreshed",
            TokenAction::Revoked => "revoked",
            TokenAction::Denied => "denied",
            TokenAction::Introspected => "introspected",
        }
    }
    pub fn parse(s: &str) -> Option<TokenAction> {
        TokenAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenEvent {
    #[serde(flatten)]
    pub common: Common,
    pub event: TokenAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<Text>,
    /// Space-separated scope string as requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_requested: Option<String>,
    /// Space-separated scope string as granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_granted: Option<String>,
    /// Launch patient. PHI: never log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
}

impl TokenEvent {
    /// The scopes the token holds: as granted, or, when an issuance or refresh logged none,
    /// as requested (RFC 6749 §5.1: the response's `scope` is "OPTIONAL, if identical to the
    /// scope requested by the client"). An empty string names no scope (RFC 6749 §3.3: a scope
    /// is one or more tokens), so it counts as not logged. None when neither is logged.
    pub fn granted_scope(&self) -> Option<&str> {
        logged(&self.scope_granted).or_else(|| match self.event {
            TokenAction::Issued | TokenAction::Refreshed => logged(&self.scope_requested),
            _ => None,
        })
    }
}

/// A logged scope string that names at least one scope.
fn logged(scope: &Option<String>) -> Option<&str> {
    scope.as_deref().filter(|s| !s.trim().is_empty())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessEvent {
    #[serde(flatten)]
    pub common: Common,
    pub method: Method,
    /// Path + query relative to the FHIR base, or an absolute URL. May hold patient ids: never log it.
    pub url: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources_returned: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Patient the request concerned. PHI: never log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_count: Option<u64>,
    /// v3 PurposeOfUse code, e.g. `TREAT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose_of_use: Option<Text>,
}

/// One canonical event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Token(TokenEvent),
    Access(AccessEvent),
}

impl Event {
    pub fn common(&self) -> &Common {
        match self {
            Event::Token(t) => &t.common,
            Event::Access(a) => &a.common,
        }
    }
    pub fn time(&self) -> Timestamp {
        self.common().time
    }
    pub fn client_id(&self) -> &str {
        &self.common().client_id
    }
    pub fn token_id(&self) -> Option<&str> {
        match self {
            Event::Token(t) => t.token_id.as_deref(),
            Event::Access(a) => a.token_id.as_deref(),
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Token(_) => "token",
            Event::Access(_) => "access",
        }
    }
}
