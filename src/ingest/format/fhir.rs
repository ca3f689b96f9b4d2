//! The parts of FHIR AuditEvent (R4 4.0.1 and R5 5.0.0, incl. IHE BALP) and Bundle that map to
//! canonical events. One set of structs reads both versions: R5 renamed or retyped several
//! elements (`type`/`subtype` → `category`/`code`, `outcome` code → object, `purposeOfEvent` →
//! `authorization`, `agent.network` → `network[x]`, `entity.role` Coding → CodeableConcept), so
//! those elements accept either shape. Unknown elements are ignored.

use serde::Deserialize;

/// A FHIR resource as far as scopewatch reads it: an AuditEvent, or a Bundle of them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    pub resource_type: Option<String>,
    /// Bundle entries.
    pub entry: Vec<BundleEntry>,
    /// R4 `type` (Coding); a Bundle's `type` is a string.
    #[serde(rename = "type")]
    pub type_: Option<CodingOrText>,
    /// R4 `subtype`.
    pub subtype: Vec<Coding>,
    /// R5 `category`.
    pub category: Vec<CodeableConcept>,
    /// R5 `code`.
    pub code: Option<CodeableConcept>,
    pub action: Option<String>,
    pub recorded: Option<String>,
    pub outcome: Option<AuditOutcome>,
    /// R4 event-level purpose of use.
    pub purpose_of_event: Vec<CodeableConcept>,
    /// R5 event-level purpose of use.
    pub authorization: Vec<CodeableConcept>,
    /// R5 direct pointer to the patient the event is about.
    pub patient: Option<Reference>,
    pub agent: Vec<Agent>,
    pub entity: Vec<Entity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BundleEntry {
    pub resource: Option<Box<Resource>>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeableConcept {
    pub coding: Vec<Coding>,
}

/// R4 Coding, R5 CodeableConcept, or a plain string (Bundle.type). One object struct reads
/// both object shapes: a Coding has `code`, a CodeableConcept has `coding`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CodingOrText {
    Object(CodingOrConcept),
    Text(serde::de::IgnoredAny),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodingOrConcept {
    pub coding: Vec<Coding>,
    pub system: Option<String>,
    pub code: Option<String>,
}

impl CodingOrText {
    /// The codings it carries (none for plain text).
    pub fn codings(&self) -> Vec<Coding> {
        match self {
            CodingOrText::Text(_) => Vec::new(),
            CodingOrText::Object(o) => {
                let mut out = o.coding.clone();
                if o.code.is_some() {
                    out.push(Coding {
                        system: o.system.clone(),
                        code: o.code.clone(),
                    });
                }
                out
            }
        }
    }
}

/// R4 `outcome` is a code (`0`, `4`, `8`, `12`); R5 is `{code: Coding, detail: [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AuditOutcome {
    Code(String),
    R5 { code: Option<Coding> },
}

impl AuditOutcome {
    pub fn code(&self) -> Option<&str> {
        match self {
            AuditOutcome::Code(c) => Some(c),
            AuditOutcome::R5 { code } => code.as_ref().and_then(|c| c.code.as_deref()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Identifier {
    pub system: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reference {
    pub reference: Option<String>,
    pub identifier: Option<Identifier>,
    pub display: Option<String>,
}

impl Reference {
    /// The most specific name the reference gives: identifier value, then display, then the
    /// literal reference.
    pub fn name(&self) -> Option<&str> {
        self.identifier
            .as_ref()
            .and_then(|i| i.value.as_deref())
            .or(self.display.as_deref())
            .or(self.reference.as_deref())
            .filter(|s| !s.trim().is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Agent {
    #[serde(rename = "type")]
    pub type_: Option<CodeableConcept>,
    pub role: Vec<CodeableConcept>,
    pub who: Option<Reference>,
    /// R4 only.
    pub name: Option<String>,
    pub requestor: Option<bool>,
    pub policy: Vec<String>,
    /// R4 network backbone.
    pub network: Option<Network>,
    /// R5 network[x].
    pub network_string: Option<String>,
    pub network_uri: Option<String>,
    /// R4.
    pub purpose_of_use: Vec<CodeableConcept>,
    /// R5.
    pub authorization: Vec<CodeableConcept>,
}

impl Agent {
    pub fn has_type(&self, code: &str) -> bool {
        self.type_
            .iter()
            .flat_map(|t| &t.coding)
            .any(|c| c.code.as_deref() == Some(code))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Network {
    pub address: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Entity {
    pub what: Option<Reference>,
    /// R4 only (audit-entity-type: 1 Person, 2 System Object, …).
    #[serde(rename = "type")]
    pub type_: Option<Coding>,
    /// R4 Coding / R5 CodeableConcept (object-role: 1 Patient, 24 Query, …).
    pub role: Option<CodingOrText>,
    /// base64 of the query (BALP: the raw request line and headers).
    pub query: Option<String>,
    pub description: Option<String>,
}

impl Entity {
    pub fn has_role(&self, code: &str) -> bool {
        self.role
            .as_ref()
            .is_some_and(|r| r.codings().iter().any(|c| c.code.as_deref() == Some(code)))
    }
    pub fn type_code(&self) -> Option<&str> {
        self.type_.as_ref().and_then(|t| t.code.as_deref())
    }
}

/// The first code in a list of concepts, preferring the v3 ActReason (PurposeOfUse) system.
pub fn purpose_code(concepts: &[CodeableConcept]) -> Option<&str> {
    let codings = || concepts.iter().flat_map(|c| &c.coding);
    codings()
        .find(|c| {
            c.system
                .as_deref()
                .is_some_and(|s| s.ends_with("v3-ActReason") || s.ends_with("v3-PurposeOfUse"))
        })
        .or_else(|| codings().next())
        .and_then(|c| c.code.as_deref())
        .filter(|c| !c.trim().is_empty())
}
