//! The parts of FHIR AuditEvent (R4 4.0.1 and R5 5.0.0, incl. IHE BALP) and Bundle that map to
//! canonical events. One set of structs reads both versions: R5 renamed or retyped several
//! elements (`type`/`subtype` → `category`/`code`, `outcome` code → object, `purposeOfEvent` →
//! `authorization`, `agent.network` → `network[x]`, `entity.role` Coding → CodeableConcept), so
//! those elements accept either shape. Unknown elements are ignored.
//!
//! Strings borrow from the input where JSON lets them (no escapes), and the either-shape
//! elements are read by a visitor, not serde's untagged buffering: an AuditEvent line is
//! decoded with few allocations (issue #15: the AuditEvent path within 1.5× of canonical).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, value::MapAccessDeserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A string borrowed from the input when it has no escapes.
///
/// Why not a plain `Cow<'a, str>`: serde's derive borrows a `Cow<str>` field only when it is
/// the field's whole type; inside `Option` or `Vec` it goes through `Cow`'s own impl, which
/// always copies. This newtype's visitor borrows wherever it sits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor(PhantomData))
    }
}

struct StrVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
    type Value = Str<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'a>, E> {
        Ok(Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'a>, E> {
        Ok(Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'a>, E> {
        Ok(Str(Cow::Owned(v)))
    }
}

/// A FHIR resource as far as scopewatch reads it: an AuditEvent, or a Bundle of them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource<'a> {
    #[serde(borrow)]
    pub resource_type: Option<Str<'a>>,
    /// Bundle entries.
    #[serde(borrow)]
    pub entry: Vec<BundleEntry<'a>>,
    /// R4 `type` (Coding); a Bundle's `type` is a string.
    #[serde(rename = "type", borrow)]
    pub type_: Option<CodingOrText<'a>>,
    /// R4 `subtype`.
    #[serde(borrow)]
    pub subtype: Vec<Coding<'a>>,
    /// R5 `category`.
    #[serde(borrow)]
    pub category: Vec<CodeableConcept<'a>>,
    /// R5 `code`.
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub action: Option<Str<'a>>,
    #[serde(borrow)]
    pub recorded: Option<Str<'a>>,
    #[serde(borrow)]
    pub outcome: Option<AuditOutcome<'a>>,
    /// R4 event-level purpose of use.
    #[serde(borrow)]
    pub purpose_of_event: Vec<CodeableConcept<'a>>,
    /// R5 event-level purpose of use.
    #[serde(borrow)]
    pub authorization: Vec<CodeableConcept<'a>>,
    /// R5 direct pointer to the patient the event is about.
    #[serde(borrow)]
    pub patient: Option<Reference<'a>>,
    #[serde(borrow)]
    pub agent: Vec<Agent<'a>>,
    #[serde(borrow)]
    pub entity: Vec<Entity<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BundleEntry<'a> {
    #[serde(borrow)]
    pub resource: Option<Box<Resource<'a>>>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct Coding<'a> {
    #[serde(borrow)]
    pub system: Option<Str<'a>>,
    #[serde(borrow)]
    pub code: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeableConcept<'a> {
    #[serde(borrow)]
    pub coding: Vec<Coding<'a>>,
}

/// R4 Coding, R5 CodeableConcept, or anything else (Bundle.type is a string). One object
/// struct reads both object shapes: a Coding has `code`, a CodeableConcept has `coding`.
#[derive(Debug)]
pub enum CodingOrText<'a> {
    Object(CodingOrConcept<'a>),
    Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodingOrConcept<'a> {
    #[serde(borrow)]
    pub coding: Vec<Coding<'a>>,
    #[serde(borrow)]
    pub system: Option<Str<'a>>,
    #[serde(borrow)]
    pub code: Option<Str<'a>>,
}

impl<'a> CodingOrText<'a> {
    /// The codings it carries (none for plain text).
    pub fn codings(&self) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
        let (list, own): (&[Coding<'a>], Option<&CodingOrConcept<'a>>) = match self {
            CodingOrText::Text => (&[], None),
            CodingOrText::Object(o) => (&o.coding, o.code.is_some().then_some(o)),
        };
        list.iter()
            .map(|c| (c.system.as_deref(), c.code.as_deref()))
            .chain(own.map(|o| (o.system.as_deref(), o.code.as_deref())))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CodingOrText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EitherShape::<CodingOrConcept<'a>, CodingOrText<'a>>::new(
            CodingOrText::Object,
            |_| CodingOrText::Text,
        ))
    }
}

/// R4 `outcome` is a code (`0`, `4`, `8`, `12`); R5 is `{code: Coding, detail: [...]}`.
#[derive(Debug)]
pub enum AuditOutcome<'a> {
    Code(Str<'a>),
    R5(OutcomeR5<'a>),
    /// Neither shape: no outcome read.
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OutcomeR5<'a> {
    #[serde(borrow)]
    pub code: Option<Coding<'a>>,
}

impl AuditOutcome<'_> {
    pub fn code(&self) -> Option<&str> {
        match self {
            AuditOutcome::Code(c) => Some(c),
            AuditOutcome::R5(r5) => r5.code.as_ref().and_then(|c| c.code.as_deref()),
            AuditOutcome::Other => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for AuditOutcome<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EitherShape::<OutcomeR5<'a>, AuditOutcome<'a>>::new(
            AuditOutcome::R5,
            |text| text.map_or(AuditOutcome::Other, AuditOutcome::Code),
        ))
    }
}

/// Reads an element that is an object (`object`) or anything else (`other`, given the text
/// when it is a string), without buffering it first.
struct EitherShape<'a, O, T> {
    object: fn(O) -> T,
    other: fn(Option<Str<'a>>) -> T,
    shape: PhantomData<&'a ()>,
}

impl<'a, O, T> EitherShape<'a, O, T> {
    fn new(object: fn(O) -> T, other: fn(Option<Str<'a>>) -> T) -> Self {
        EitherShape {
            object,
            other,
            shape: PhantomData,
        }
    }
}

impl<'de: 'a, 'a, O: Deserialize<'de>, T> Visitor<'de> for EitherShape<'a, O, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<T, E> {
        Ok((self.other)(Some(Str(Cow::Borrowed(v)))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.other)(Some(Str(Cow::Owned(v.to_string())))))
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
        O::deserialize(MapAccessDeserializer::new(map)).map(self.object)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<T, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok((self.other)(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok((self.other)(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        Ok((self.other)(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        Ok((self.other)(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Ok((self.other)(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok((self.other)(None))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Identifier<'a> {
    #[serde(borrow)]
    pub system: Option<Str<'a>>,
    #[serde(borrow)]
    pub value: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reference<'a> {
    #[serde(borrow)]
    pub reference: Option<Str<'a>>,
    #[serde(borrow)]
    pub identifier: Option<Identifier<'a>>,
    #[serde(borrow)]
    pub display: Option<Str<'a>>,
}

impl Reference<'_> {
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
pub struct Agent<'a> {
    #[serde(rename = "type", borrow)]
    pub type_: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub role: Vec<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub who: Option<Reference<'a>>,
    /// R4 only.
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    pub requestor: Option<bool>,
    #[serde(borrow)]
    pub policy: Vec<Str<'a>>,
    /// R4 network backbone.
    #[serde(borrow)]
    pub network: Option<Network<'a>>,
    /// R5 network[x].
    #[serde(borrow)]
    pub network_string: Option<Str<'a>>,
    #[serde(borrow)]
    pub network_uri: Option<Str<'a>>,
    /// R4.
    #[serde(borrow)]
    pub purpose_of_use: Vec<CodeableConcept<'a>>,
    /// R5.
    #[serde(borrow)]
    pub authorization: Vec<CodeableConcept<'a>>,
}

impl Agent<'_> {
    pub fn has_type(&self, code: &str) -> bool {
        self.type_
            .iter()
            .flat_map(|t| &t.coding)
            .any(|c| c.code.as_deref() == Some(code))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Network<'a> {
    #[serde(borrow)]
    pub address: Option<Str<'a>>,
    #[serde(rename = "type", borrow)]
    pub type_: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Entity<'a> {
    #[serde(borrow)]
    pub what: Option<Reference<'a>>,
    /// R4 only (audit-entity-type: 1 Person, 2 System Object, …).
    #[serde(rename = "type", borrow)]
    pub type_: Option<Coding<'a>>,
    /// R4 Coding / R5 CodeableConcept (object-role: 1 Patient, 24 Query, …): both objects,
    /// read by one struct without a visitor.
    #[serde(borrow)]
    pub role: Option<CodingOrConcept<'a>>,
    /// base64 of the query (BALP: the raw request line and headers).
    #[serde(borrow)]
    pub query: Option<Str<'a>>,
    #[serde(borrow)]
    pub description: Option<Str<'a>>,
}

impl Entity<'_> {
    pub fn has_role(&self, code: &str) -> bool {
        self.role.as_ref().is_some_and(|r| {
            r.code.as_deref() == Some(code)
                || r.coding.iter().any(|c| c.code.as_deref() == Some(code))
        })
    }
    pub fn type_code(&self) -> Option<&str> {
        self.type_.as_ref().and_then(|t| t.code.as_deref())
    }
}

/// The first code in a list of concepts, preferring the v3 ActReason (PurposeOfUse) system.
pub fn purpose_code<'s>(concepts: &'s [CodeableConcept<'_>]) -> Option<&'s str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn borrowed(s: &Option<Str>) -> bool {
        matches!(s, Some(Str(Cow::Borrowed(_))))
    }

    #[test]
    fn strings_without_escapes_are_borrowed_inside_option_and_vec() {
        let text = r#"{"resourceType":"AuditEvent","recorded":"2024-01-01T00:00:00Z",
            "agent":[{"policy":["urn:ietf:params:oauth:jti:t1"],"who":{"display":"app"}}],
            "entity":[{"query":"R0VUIC9QYXRpZW50","description":"a \"quoted\" text"}]}"#;
        let r: Resource = serde_json::from_str(text).expect("parses");
        assert!(borrowed(&r.recorded));
        assert!(borrowed(&r.resource_type));
        assert!(matches!(r.agent[0].policy[0], Str(Cow::Borrowed(_))));
        assert!(borrowed(&r.agent[0].who.as_ref().expect("who").display));
        assert!(borrowed(&r.entity[0].query));
        // An escape needs an owned copy, with the escape resolved.
        let description = r.entity[0].description.as_deref();
        assert_eq!(description, Some("a \"quoted\" text"));
        assert!(!borrowed(&r.entity[0].description));
    }

    #[test]
    fn a_string_element_of_another_type_is_an_error_naming_what_was_expected() {
        let err = serde_json::from_str::<Resource>(r#"{"recorded":5}"#).expect_err("rejects");
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
