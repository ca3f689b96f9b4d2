//! The alert a SOC analyst reads: what drifted, observed against baseline, with evidence and
//! framework references. Serialised as one NDJSON line, or as OCSF (see `ocsf.rs`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::id::stable_id;
use crate::event::Timestamp;

/// The three families of findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    ScopeCreep,
    PurposeDrift,
    DataVolume,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ScopeCreep => "scope_creep",
            Category::PurposeDrift => "purpose_drift",
            Category::DataVolume => "data_volume",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The severity named `text` (`info` … `critical`).
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    /// OCSF `severity_id` (1 Informational … 5 Critical).
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Info => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }
    pub fn ocsf_name(self) -> &'static str {
        match self {
            Severity::Info => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// Whether this record opens an incident or updates one (OCSF activity Create / Update).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    Create,
    Update,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A reference into a security framework (OWASP NHI Top 10 2025, MITRE ATT&CK, NIST CSF 2.0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrameworkRef {
    pub framework: &'static str,
    pub id: &'static str,
    pub name: &'static str,
}

pub const NHI1_IMPROPER_OFFBOARDING: FrameworkRef = FrameworkRef {
    framework: "OWASP NHI Top 10 2025",
    id: "NHI1",
    name: "Improper Offboarding",
};
pub const NHI5_OVERPRIVILEGED: FrameworkRef = FrameworkRef {
    framework: "OWASP NHI Top 10 2025",
    id: "NHI5",
    name: "Overprivileged NHI",
};
pub const NHI7_LONG_LIVED_SECRETS: FrameworkRef = FrameworkRef {
    framework: "OWASP NHI Top 10 2025",
    id: "NHI7",
    name: "Long-Lived Secrets",
};
pub const NHI10_HUMAN_USE: FrameworkRef = FrameworkRef {
    framework: "OWASP NHI Top 10 2025",
    id: "NHI10",
    name: "Human Use of NHI",
};
pub const ATTACK_T1213: FrameworkRef = FrameworkRef {
    framework: "MITRE ATT&CK",
    id: "T1213",
    name: "Data from Information Repositories",
};
pub const ATTACK_T1530: FrameworkRef = FrameworkRef {
    framework: "MITRE ATT&CK",
    id: "T1530",
    name: "Data from Cloud Storage",
};
pub const ATTACK_T1567: FrameworkRef = FrameworkRef {
    framework: "MITRE ATT&CK",
    id: "T1567",
    name: "Exfiltration Over Web Service",
};
pub const CSF_PR_AA_05: FrameworkRef = FrameworkRef {
    framework: "NIST CSF 2.0",
    id: "PR.AA-05",
    name: "Access permissions, entitlements, and authorizations are defined, managed, enforced, and reviewed",
};
pub const CSF_DE_CM_03: FrameworkRef = FrameworkRef {
    framework: "NIST CSF 2.0",
    id: "DE.CM-03",
    name:
        "Personnel activity and technology usage are monitored to find potentially adverse events",
};

/// Every framework reference a rule may cite (snapshots name them by framework and id).
pub const ALL_REFERENCES: [FrameworkRef; 9] = [
    NHI1_IMPROPER_OFFBOARDING,
    NHI5_OVERPRIVILEGED,
    NHI7_LONG_LIVED_SECRETS,
    NHI10_HUMAN_USE,
    ATTACK_T1213,
    ATTACK_T1530,
    ATTACK_T1567,
    CSF_PR_AA_05,
    CSF_DE_CM_03,
];

impl FrameworkRef {
    /// The known reference with this framework and id.
    pub fn lookup(framework: &str, id: &str) -> Option<FrameworkRef> {
        ALL_REFERENCES
            .iter()
            .find(|r| r.framework == framework && r.id == id)
            .cloned()
    }
}

/// What backs the finding. Example requests never carry patient ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_ids: Vec<String>,
    /// Request shapes such as `GET Condition?patient=…` (ids masked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub example_requests: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
    /// What this incident is about within its rule (resource type and interaction, scope):
    /// one incident per app × rule × cause.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cause: String,
}

/// One alert record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// This record: deterministic from the incident and its revision.
    pub id: String,
    /// The incident it belongs to: deterministic from app, rule and the window it started in.
    pub incident_id: String,
    pub activity: Activity,
    /// 0 for the record that opened the incident, then 1, 2, … for updates.
    pub revision: u32,
    /// Event time when raised.
    pub time: Timestamp,
    pub client_id: String,
    pub category: Category,
    pub rule: &'static str,
    pub severity: Severity,
    /// 0–100: the same score means the same surprise across rules.
    pub score: u8,
    pub summary: String,
    pub window: Window,
    pub observed: serde_json::Value,
    pub baseline: serde_json::Value,
    pub evidence: Evidence,
    pub references: Vec<FrameworkRef>,
    /// What recurs within the incident (resource type and interaction, a scope; empty for
    /// rules with one cause per app): what a silence's `cause` matches. Part of the incident
    /// id already; not written in alert records.
    #[serde(skip)]
    pub cause: String,
    /// The silence that suppressed this record (`FILE#N`): such a record is not emitted, only
    /// kept in the history store and counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
}

impl Alert {
    /// Ids for an incident of `rule` on `client_id` that started in the window beginning at
    /// `incident_start`, at the given revision.
    pub fn ids(
        client_id: &str,
        rule: &str,
        cause: &str,
        incident_start: Timestamp,
        revision: u32,
    ) -> (String, String) {
        let start = incident_start.unix_micros().to_string();
        // A rule with one cause per app keeps the ids it always had.
        let incident = if cause.is_empty() {
            stable_id(&[client_id, rule, &start])
        } else {
            stable_id(&[client_id, rule, cause, &start])
        };
        let record = stable_id(&[&incident, &revision.to_string()]);
        (record, incident)
    }
}
