//! Parsing one SMART scope token (v1, v2, launch, identity, refresh, custom).
//!
//! Parsing never fails: a malformed token becomes [`Scope::Invalid`] carrying the raw text and
//! the reason, because servers MAY silently accept odd scopes and the detector must still see them.

use std::fmt;

use serde::Serialize;

use super::perms::Perms;

/// Which population a resource scope reaches. Ordered by reach: patient < user < system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Context {
    Patient,
    User,
    System,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Context> {
        match s {
            "patient" => Some(Context::Patient),
            "user" => Some(Context::User),
            "system" => Some(Context::System),
            _ => None,
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resource part of a scope: one type or the `*` wildcard (all types, now and future).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceTarget {
    Any,
    Type(String),
}

impl ResourceTarget {
    pub fn as_str(&self) -> &str {
        match self {
            ResourceTarget::Any => "*",
            ResourceTarget::Type(t) => t,
        }
    }
    /// True when a scope on `self` applies to a request on `wanted`.
    pub fn includes(&self, wanted: &ResourceTarget) -> bool {
        match (self, wanted) {
            (ResourceTarget::Any, _) => true,
            (ResourceTarget::Type(a), ResourceTarget::Type(b)) => a == b,
            (ResourceTarget::Type(_), ResourceTarget::Any) => false,
        }
    }
}

/// Which spelling the scope used on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    V1,
    V2,
}

/// `context/Type.perms?constraints`, normalised to v2 permission bits.
/// Equality ignores `syntax`: a v1 and a v2 spelling of the same grant are the same grant.
#[derive(Clone, Debug)]
pub struct ResourceScope {
    pub context: Context,
    pub resource: ResourceTarget,
    pub perms: Perms,
    /// `name=value` search constraints, sorted so spelling order does not matter.
    pub constraints: Vec<(String, String)>,
    pub syntax: Syntax,
}

impl PartialEq for ResourceScope {
    fn eq(&self, other: &Self) -> bool {
        self.context == other.context
            && self.resource == other.resource
            && self.perms == other.perms
            && self.constraints == other.constraints
    }
}
impl Eq for ResourceScope {}
impl std::hash::Hash for ResourceScope {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.context, &self.resource, self.perms, &self.constraints).hash(state);
    }
}

impl ResourceScope {
    /// Canonical v2 spelling, e.g. `patient/Observation.rs?category=laboratory`.
    pub fn normalized(&self) -> String {
        let mut out = format!(
            "{}/{}.{}",
            self.context,
            self.resource.as_str(),
            self.perms.letters()
        );
        for (i, (name, value)) in self.constraints.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        out
    }

    /// `*` as the resource type: all types now and any the server adds later.
    pub fn is_wildcard(&self) -> bool {
        self.resource == ResourceTarget::Any
    }

    /// True when `self` grants at least what `other` grants on `other`'s target
    /// (same or broader context, same type or `*`, fewer or equal constraints).
    pub fn applies_to(&self, context: Context, resource: &ResourceTarget) -> bool {
        self.context >= context && self.resource.includes(resource)
    }

    /// True when every constraint of `self` is also a constraint of `other`
    /// (an unconstrained scope covers every constrained version of itself).
    pub fn constraints_within(&self, other: &[(String, String)]) -> bool {
        self.constraints.iter().all(|c| other.contains(c))
    }
}

/// One scope token, classified.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Resource(ResourceScope),
    /// `launch` (EHR launch, `context` None), `launch/patient`, `launch/encounter`,
    /// or an extended launch context such as `launch/imagingstudy?role=…`.
    Launch {
        context: Option<String>,
        role: Option<String>,
    },
    OpenId,
    FhirUser,
    /// `profile`: deprecated v1 alias of `fhirUser`, still common.
    Profile,
    OfflineAccess,
    OnlineAccess,
    /// A well-formed extension scope: a URI the server controls, a `__` prefix, or a
    /// token that does not try to be a SMART resource scope.
    Custom(String),
    /// Kept as an opaque value with the reason it is not a valid SMART scope.
    Invalid {
        raw: String,
        reason: String,
    },
}

/// The URI representation of SMART scopes; never a scope string on the wire.
const SMART_URI_PREFIX: &str = "http://smarthealthit.org/fhir/scopes/";

impl Scope {
    pub fn parse(token: &str) -> Scope {
        parse_token(token)
    }

    pub fn is_valid(&self) -> bool {
        !matches!(self, Scope::Invalid { .. })
    }

    pub fn is_deprecated(&self) -> bool {
        matches!(self, Scope::Profile)
    }

    pub fn as_resource(&self) -> Option<&ResourceScope> {
        match self {
            Scope::Resource(r) => Some(r),
            _ => None,
        }
    }

    /// Context of a resource scope; None for every other kind.
    pub fn context(&self) -> Option<Context> {
        self.as_resource().map(|r| r.context)
    }

    pub fn is_wildcard(&self) -> bool {
        self.as_resource().is_some_and(ResourceScope::is_wildcard)
    }

    /// The canonical spelling (v2 letters for resource scopes; raw text for the rest).
    pub fn normalized(&self) -> String {
        match self {
            Scope::Resource(r) => r.normalized(),
            Scope::Launch { context, role } => {
                let mut s = String::from("launch");
                if let Some(c) = context {
                    s.push('/');
                    s.push_str(c);
                }
                if let Some(r) = role {
                    s.push_str("?role=");
                    s.push_str(r);
                }
                s
            }
            Scope::OpenId => "openid".into(),
            Scope::FhirUser => "fhirUser".into(),
            Scope::Profile => "profile".into(),
            Scope::OfflineAccess => "offline_access".into(),
            Scope::OnlineAccess => "online_access".into(),
            Scope::Custom(s) => s.clone(),
            Scope::Invalid { raw, .. } => raw.clone(),
        }
    }

    /// A reason the scope is syntactically fine but questionable under policy
    /// (unknown resource type, non-compartment type under `patient/`).
    pub fn policy_note(&self) -> Option<String> {
        let r = self.as_resource()?;
        let ResourceTarget::Type(t) = &r.resource else {
            return None;
        };
        if !crate::smart::request::is_known_resource_type(t) {
            return Some(format!("'{t}' is not a FHIR R4/R5 resource type"));
        }
        if r.context == Context::Patient && !crate::smart::request::is_patient_compartment_type(t) {
            return Some(format!(
                "'{t}' is not in the patient compartment, so a patient/ scope on it is unusual"
            ));
        }
        None
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

fn invalid(token: &str, reason: impl Into<String>) -> Scope {
    Scope::Invalid {
        raw: token.to_string(),
        reason: reason.into(),
    }
}

fn parse_token(token: &str) -> Scope {
    if token.is_empty() {
        return invalid(token, "empty scope");
    }
    if token.chars().any(char::is_whitespace) {
        return invalid(
            token,
            "contains whitespace: a scope string holds several scopes and must be split on spaces first",
        );
    }
    match token {
        "launch" => {
            return Scope::Launch {
                context: None,
                role: None,
            }
        }
        "openid" => return Scope::OpenId,
        "fhirUser" => return Scope::FhirUser,
        "profile" => return Scope::Profile,
        "offline_access" => return Scope::OfflineAccess,
        "online_access" => return Scope::OnlineAccess,
        _ => {}
    }
    if let Some(rest) = token.strip_prefix("launch/") {
        return parse_launch(token, rest);
    }
    if token.starts_with(SMART_URI_PREFIX) {
        return invalid(
            token,
            "URI representation of a SMART scope; tokens carry the short form (e.g. patient/*.r)",
        );
    }
    // Split on the first '?' only: constraint values contain '/', '.', ':' and '|'.
    let (base, query) = match token.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (token, None),
    };
    if base.contains("://") || token.starts_with("__") {
        return Scope::Custom(token.to_string());
    }
    if base.contains(',') {
        return invalid(
            token,
            "comma-separated scope list; OAuth scopes are separated by spaces",
        );
    }
    if looks_like_resource_scope(base) {
        return match parse_resource(base, query) {
            Ok(r) => Scope::Resource(r),
            Err(reason) => invalid(token, reason),
        };
    }
    Scope::Custom(token.to_string())
}

fn starts_with_context_word(base: &str) -> bool {
    let lower = base.get(..7).unwrap_or(base).to_ascii_lowercase();
    lower.starts_with("patient") || lower.starts_with("user") || lower.starts_with("system")
}

/// Whether the token tries to be `context/Type.perm`: anything that does is held to the grammar,
/// anything that does not (e.g. `smart/orchestrate_launch`) is a custom scope.
fn looks_like_resource_scope(base: &str) -> bool {
    if starts_with_context_word(base) || base.starts_with("*/") || base.starts_with('/') {
        return true;
    }
    if let Some((_, after)) = base.rsplit_once('/') {
        return after.contains('.');
    }
    // `Observation.rs` shorthand without a context.
    base.contains('.') && base.starts_with(|c: char| c.is_ascii_uppercase())
}

fn parse_resource(base: &str, query: Option<&str>) -> Result<ResourceScope, String> {
    let Some((context_text, rest)) = base.split_once('/') else {
        return Err(missing_slash_reason(base));
    };
    let context = match Context::parse(context_text) {
        Some(c) => c,
        None if context_text.is_empty() => return Err("empty context before '/'".into()),
        None if context_text == "*" => {
            return Err("wildcard context '*' is not part of the SMART grammar".into())
        }
        None if Context::parse(&context_text.to_ascii_lowercase()).is_some() => {
            return Err(format!(
                "context '{context_text}' must be lower-case (patient, user or system)"
            ))
        }
        None => {
            return Err(format!(
                "unknown context '{context_text}' (expected patient, user or system)"
            ))
        }
    };
    if rest.contains('/') {
        return Err("unexpected '/' after the resource type (expected Type.permission)".into());
    }
    let Some((type_text, perm_text)) = rest.split_once('.') else {
        return Err(if rest == "*" || rest.is_empty() {
            format!("'{context}/{rest}' has no permission suffix (.read, .rs, …)")
        } else {
            "missing '.' between resource type and permission".into()
        });
    };
    let resource = parse_resource_type(type_text)?;
    if perm_text.contains('.') {
        return Err("extra '.' segment after the permission".into());
    }
    let (perms, syntax) = match perm_text {
        "read" => (Perms::V1_READ, Syntax::V1),
        "write" => (Perms::V1_WRITE, Syntax::V1),
        "*" => (Perms::ALL, Syntax::V1),
        letters => (Perms::from_v2_letters(letters)?, Syntax::V2),
    };
    let constraints = match query {
        None => Vec::new(),
        Some(q) => parse_constraints(q)?,
    };
    Ok(ResourceScope {
        context,
        resource,
        perms,
        constraints,
        syntax,
    })
}

fn missing_slash_reason(base: &str) -> String {
    let lower = base.to_ascii_lowercase();
    for word in ["patient", "user", "system"] {
        if lower == word {
            return format!("bare context '{base}' without resource type and permission");
        }
        if lower.starts_with(word) && base[word.len()..].starts_with('.') {
            return format!(
                "'.' instead of '/' after the context '{}'",
                &base[..word.len()]
            );
        }
    }
    if base.starts_with(|c: char| c.is_ascii_uppercase()) && base.contains('.') {
        return "missing context prefix (patient/, user/ or system/)".into();
    }
    "missing '/' after the context".into()
}

fn parse_resource_type(text: &str) -> Result<ResourceTarget, String> {
    if text.is_empty() {
        return Err("empty resource type".into());
    }
    if text == "*" {
        return Ok(ResourceTarget::Any);
    }
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    if !first_ok || !chars.all(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "resource type '{text}' must start upper-case and contain only letters"
        ));
    }
    Ok(ResourceTarget::Type(text.to_string()))
}

fn parse_constraints(query: &str) -> Result<Vec<(String, String)>, String> {
    if query.is_empty() {
        return Err("empty constraint after '?'".into());
    }
    let mut out = Vec::new();
    for pair in query.split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!("constraint '{pair}' is not name=value"));
        };
        if name.is_empty() {
            return Err("constraint with an empty parameter name".into());
        }
        if value.is_empty() {
            return Err(format!("constraint '{name}' has no value"));
        }
        out.push((name.to_string(), value.to_string()));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn parse_launch(token: &str, rest: &str) -> Scope {
    let (name, query) = match rest.split_once('?') {
        Some((n, q)) => (n, Some(q)),
        None => (rest, None),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase()) {
        return invalid(
            token,
            "launch context must be a lower-case resource type name (launch/patient, launch/encounter, …)",
        );
    }
    let role = match query {
        None => None,
        Some(q) => match q.strip_prefix("role=") {
            Some(r) if !r.is_empty() && !r.contains('&') => Some(r.to_string()),
            _ => return invalid(token, "launch context accepts only one '?role=…' parameter"),
        },
    };
    Scope::Launch {
        context: Some(name.to_string()),
        role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(s: &str) -> ResourceScope {
        match Scope::parse(s) {
            Scope::Resource(r) => r,
            other => panic!("{s} parsed as {other:?}"),
        }
    }

    fn reason(s: &str) -> String {
        match Scope::parse(s) {
            Scope::Invalid { reason, .. } => reason,
            other => panic!("{s} parsed as {other:?}"),
        }
    }

    #[test]
    fn v1_and_v2_spellings_normalise_alike() {
        assert_eq!(
            resource("patient/Observation.read").normalized(),
            "patient/Observation.rs"
        );
        assert_eq!(resource("user/*.*").normalized(), "user/*.cruds");
        assert_eq!(resource("system/*.write").normalized(), "system/*.cud");
        assert_eq!(resource("patient/Observation.read").syntax, Syntax::V1);
        assert_eq!(resource("patient/Observation.rs").syntax, Syntax::V2);
    }

    #[test]
    fn constraints_are_sorted_and_keep_special_characters() {
        let r = resource("system/Observation.rs?code=a|b&category=http://x.org/cs|lab");
        assert_eq!(
            r.constraints,
            vec![
                ("category".to_string(), "http://x.org/cs|lab".to_string()),
                ("code".to_string(), "a|b".to_string())
            ]
        );
        assert_eq!(
            r.normalized(),
            "system/Observation.rs?category=http://x.org/cs|lab&code=a|b"
        );
    }

    #[test]
    fn reasons_name_the_problem() {
        assert!(reason("Patient/*.read").contains("lower-case"));
        assert!(reason("bad/Patient.*").contains("unknown context 'bad'"));
        assert!(reason("patient.Observation.rs?category=").contains("'.' instead of '/'"));
        assert!(reason("Condition.rs?category=x").contains("missing context prefix"));
        assert!(reason("system").contains("bare context"));
        assert!(reason("system/*").contains("no permission suffix"));
        assert!(reason("patient/Patient1.*").contains("only letters"));
        assert!(reason("*/Observation.rs").contains("wildcard context"));
        assert!(reason("user/*.*,system/*.rs").contains("comma-separated"));
        assert!(reason("patient/*.*.read").contains("extra '.'"));
        assert!(reason("patient/Observation.dus").contains("order"));
        assert!(reason("a b").contains("whitespace"));
    }

    #[test]
    fn special_and_custom_scopes() {
        assert_eq!(Scope::parse("offline_access"), Scope::OfflineAccess);
        assert!(Scope::parse("profile").is_deprecated());
        assert_eq!(
            Scope::parse("launch/list?role=https://example.org/med-list-at-home"),
            Scope::Launch {
                context: Some("list".into()),
                role: Some("https://example.org/med-list-at-home".into())
            }
        );
        assert!(matches!(
            Scope::parse("smart/orchestrate_launch"),
            Scope::Custom(_)
        ));
        assert!(matches!(
            Scope::parse("__profilePhoto.manage"),
            Scope::Custom(_)
        ));
        assert!(!Scope::parse("launch/Patient").is_valid());
    }

    #[test]
    fn policy_notes() {
        assert!(Scope::parse("patient/CodeSystem.read")
            .policy_note()
            .unwrap()
            .contains("patient compartment"));
        assert!(Scope::parse("system/ResourceType.*")
            .policy_note()
            .unwrap()
            .contains("not a FHIR"));
        assert_eq!(Scope::parse("patient/Observation.rs").policy_note(), None);
    }
}
