//! One JSON object line → its known fields as loosely typed scalars, without allocating for
//! strings that need no unescaping. Type checks with field names happen in `parse.rs`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The contract's field names, in the order of [`RawEvent::fields`].
pub const FIELD_NAMES: [&str; 20] = [
    "type",
    "time",
    "client_id",
    "user",
    "source_ip",
    "user_agent",
    "event",
    "token_id",
    "grant_type",
    "scope_requested",
    "scope_granted",
    "patient",
    "expires_in",
    "method",
    "url",
    "status",
    "resources_returned",
    "bytes",
    "patient_count",
    "purpose_of_use",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Type,
    Time,
    ClientId,
    User,
    SourceIp,
    UserAgent,
    Event,
    TokenId,
    GrantType,
    ScopeRequested,
    ScopeGranted,
    Patient,
    ExpiresIn,
    Method,
    Url,
    Status,
    ResourcesReturned,
    Bytes,
    PatientCount,
    PurposeOfUse,
}

impl Field {
    const ALL: [Field; 20] = [
        Field::Type,
        Field::Time,
        Field::ClientId,
        Field::User,
        Field::SourceIp,
        Field::UserAgent,
        Field::Event,
        Field::TokenId,
        Field::GrantType,
        Field::ScopeRequested,
        Field::ScopeGranted,
        Field::Patient,
        Field::ExpiresIn,
        Field::Method,
        Field::Url,
        Field::Status,
        Field::ResourcesReturned,
        Field::Bytes,
        Field::PatientCount,
        Field::PurposeOfUse,
    ];
    pub fn name(self) -> &'static str {
        FIELD_NAMES[self as usize]
    }
    fn from_key(key: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .position(|n| *n == key)
            .map(|i| Field::ALL[i])
    }
}

/// A JSON value reduced to what the contract needs to type-check it.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    /// "a string", "an object", … for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) | Scalar::UInt(_) => "an integer",
            Scalar::Float(_) => "a number with a fraction",
            Scalar::Str(_) => "a string",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// A key that borrows from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The contract fields present in one JSON object. Unknown fields are skipped;
/// a field given twice is an error (it could hide one value behind another).
#[derive(Debug, Default)]
pub struct RawEvent<'a> {
    pub fields: [Option<Scalar<'a>>; 20],
}

impl<'a> RawEvent<'a> {
    pub fn take(&mut self, field: Field) -> Option<Scalar<'a>> {
        match self.fields[field as usize].take() {
            None | Some(Scalar::Null) => None,
            Some(v) => Some(v),
        }
    }
}

impl<'de> Deserialize<'de> for RawEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RawEventVisitor)
    }
}

struct RawEventVisitor;

impl<'de> Visitor<'de> for RawEventVisitor {
    type Value = RawEvent<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawEvent::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match Field::from_key(&key) {
                Some(field) => {
                    let slot = &mut raw.fields[field as usize];
                    if slot.is_some() {
                        return Err(de::Error::custom(format_args!(
                            "duplicate field {}",
                            field.name()
                        )));
                    }
                    *slot = Some(map.next_value::<Scalar<'de>>()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}
