//! SQL functions that make SMART/FHIR questions one-liners, built on the same scope algebra and
//! request grammar as detection:
//!
//! | function | returns |
//! |---|---|
//! | `scope_covers(scopes, resource_type, interaction)` | do the scopes (a list, or one space-separated string) allow the interaction (`read`, `search-type`, … or SMART letters such as `rs`) on the type (`*` for all)? NULL when the interaction needs no SMART permission of its own (`operation`, `capabilities`, …) |
//! | `scope_is_wildcard(scope)` | is it a `*` resource scope? |
//! | `scope_normalize(scope)` | canonical v2 spelling (a space-separated string is normalised as a set) |
//! | `scope_context(scope)` | `patient`, `user` or `system` for a resource scope, else NULL |
//! | `fhir_resource_type(url)` | the resource type a request acts on |
//! | `fhir_interaction(method, url)` | `read`, `search-type`, `operation`, … |
//! | `fhir_patient(url)` | the one patient id the URL names (NULL for none or several) |

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, ListArray, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::smart::request::{Classifier, Interaction, Method};
use crate::smart::scope::{Context, Perms, ResourceTarget, Scope, ScopeSet};
use crate::sql::history::Pseudonymizer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    ScopeCovers,
    ScopeIsWildcard,
    ScopeNormalize,
    ScopeContext,
    FhirResourceType,
    FhirInteraction,
    FhirPatient,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::ScopeCovers,
        Kind::ScopeIsWildcard,
        Kind::ScopeNormalize,
        Kind::ScopeContext,
        Kind::FhirResourceType,
        Kind::FhirInteraction,
        Kind::FhirPatient,
    ];
    fn name(self) -> &'static str {
        match self {
            Kind::ScopeCovers => "scope_covers",
            Kind::ScopeIsWildcard => "scope_is_wildcard",
            Kind::ScopeNormalize => "scope_normalize",
            Kind::ScopeContext => "scope_context",
            Kind::FhirResourceType => "fhir_resource_type",
            Kind::FhirInteraction => "fhir_interaction",
            Kind::FhirPatient => "fhir_patient",
        }
    }
    fn arity(self) -> usize {
        match self {
            Kind::ScopeCovers => 3,
            Kind::FhirInteraction => 2,
            _ => 1,
        }
    }
    fn returns(self) -> DataType {
        match self {
            Kind::ScopeCovers | Kind::ScopeIsWildcard => DataType::Boolean,
            _ => DataType::Utf8,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SmartUdf {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for SmartUdf {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.kind.returns())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = match self.kind {
            Kind::ScopeCovers => scope_covers(&arrays)?,
            Kind::ScopeIsWildcard => bool_of(
                &strings(&arrays[0])?,
                |s| matches!(Scope::parse(s), Scope::Resource(r) if r.is_wildcard()),
            ),
            Kind::ScopeNormalize => string_of(&strings(&arrays[0])?, |s| {
                Some(ScopeSet::parse(s).normalized_string())
            }),
            Kind::ScopeContext => string_of(&strings(&arrays[0])?, |s| match Scope::parse(s) {
                Scope::Resource(r) => Some(r.context.as_str().to_string()),
                _ => None,
            }),
            Kind::FhirResourceType => {
                let classifier = Classifier::new();
                string_of(&strings(&arrays[0])?, |url| {
                    classifier
                        .classify(Method::Get, url)
                        .resource_type
                        .map(str::to_string)
                })
            }
            Kind::FhirInteraction => fhir_interaction(&arrays)?,
            Kind::FhirPatient => {
                let classifier = Classifier::new();
                string_of(&strings(&arrays[0])?, |url| {
                    let request = classifier.classify(Method::Get, url);
                    match request.patient_ids().as_slice() {
                        [one] => Some(one.to_string()),
                        _ => None,
                    }
                })
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Registers every function on the session.
pub fn register(ctx: &SessionContext) {
    for kind in Kind::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(SmartUdf {
            kind,
            signature: Signature::any(kind.arity(), Volatility::Immutable),
        }));
    }
}

/// `pseudonym(id)`: the pseudonym a store written with this key holds for a patient id.
pub fn register_pseudonym(ctx: &SessionContext, pseudonymizer: Pseudonymizer) {
    let fun = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let ids = strings(&arrays[0])?;
        Ok(ColumnarValue::Array(string_of(&ids, |id| {
            Some(pseudonymizer.pseudonym(id))
        })))
    };
    ctx.register_udf(datafusion::logical_expr::create_udf(
        "pseudonym",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(fun),
    ));
}

/// Any string column (Utf8, LargeUtf8, Utf8View, dictionary) as plain Utf8.
fn strings(array: &ArrayRef) -> Result<StringArray> {
    let cast = cast(array, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

fn bool_of(input: &StringArray, f: impl Fn(&str) -> bool) -> ArrayRef {
    let mut out = BooleanBuilder::with_capacity(input.len());
    for v in input.iter() {
        out.append_option(v.map(&f));
    }
    Arc::new(out.finish())
}

fn string_of(input: &StringArray, f: impl Fn(&str) -> Option<String>) -> ArrayRef {
    let mut out = StringBuilder::new();
    for v in input.iter() {
        out.append_option(v.and_then(&f));
    }
    Arc::new(out.finish())
}

fn fhir_interaction(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let methods = strings(&arrays[0])?;
    let urls = strings(&arrays[1])?;
    let classifier = Classifier::new();
    let mut out = StringBuilder::new();
    for (m, u) in methods.iter().zip(urls.iter()) {
        let value = match (m.and_then(|m| m.parse::<Method>().ok()), u) {
            (Some(method), Some(url)) => {
                Some(classifier.classify(method, url).interaction.as_str())
            }
            _ => None,
        };
        out.append_option(value);
    }
    Ok(Arc::new(out.finish()))
}

/// The permission letters an interaction needs (or letters given directly, e.g. `rs`).
fn perms_for(interaction: &str) -> Option<Perms> {
    const READS: [Interaction; 3] = [
        Interaction::Read,
        Interaction::Vread,
        Interaction::HistoryInstance,
    ];
    const SEARCHES: [Interaction; 5] = [
        Interaction::SearchType,
        Interaction::SearchSystem,
        Interaction::SearchCompartment,
        Interaction::HistoryType,
        Interaction::HistorySystem,
    ];
    let named = |list: &[Interaction]| list.iter().any(|i| i.as_str() == interaction);
    if named(&READS) {
        Some(Perms::READ)
    } else if named(&SEARCHES) {
        Some(Perms::SEARCH)
    } else if interaction == Interaction::Create.as_str() {
        Some(Perms::CREATE)
    } else if interaction == Interaction::Update.as_str()
        || interaction == Interaction::Patch.as_str()
    {
        Some(Perms::UPDATE)
    } else if interaction == Interaction::Delete.as_str() {
        Some(Perms::DELETE)
    } else {
        Perms::from_v2_letters(interaction)
            .ok()
            .filter(|p| !p.is_empty())
    }
}

/// One row's scopes: a list column, or a space-separated string.
fn scope_sets(array: &ArrayRef) -> Result<Vec<Option<ScopeSet>>> {
    match array.data_type() {
        DataType::List(_) | DataType::LargeList(_) => {
            let list = cast(
                array,
                &DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new(
                    "item",
                    DataType::Utf8,
                    true,
                ))),
            )?;
            let list: &ListArray = list.as_list::<i32>();
            Ok((0..list.len())
                .map(|i| {
                    (!list.is_null(i)).then(|| {
                        let values = list.value(i);
                        let values = values.as_string::<i32>();
                        ScopeSet::from_scopes(values.iter().flatten().map(Scope::parse))
                    })
                })
                .collect())
        }
        _ => Ok(strings(array)?
            .iter()
            .map(|s| s.map(ScopeSet::parse))
            .collect()),
    }
}

fn scope_covers(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let sets = scope_sets(&arrays[0])?;
    let types = strings(&arrays[1])?;
    let interactions = strings(&arrays[2])?;
    let mut out = BooleanBuilder::with_capacity(sets.len());
    for ((set, ty), interaction) in sets.iter().zip(types.iter()).zip(interactions.iter()) {
        let value = match (set, ty, interaction) {
            (Some(set), Some(ty), Some(interaction)) => perms_for(interaction).map(|perms| {
                let target = if ty == "*" {
                    ResourceTarget::Any
                } else {
                    ResourceTarget::Type(ty.to_string())
                };
                // Patient context: the narrowest; user and system scopes cover it too.
                set.covers(Context::Patient, &target, perms)
            }),
            _ => None,
        };
        out.append_option(value);
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::display::array_value_to_string;

    async fn one_row(sql: &str) -> Vec<String> {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let b = &batches[0];
        (0..b.num_columns())
            .map(|c| array_value_to_string(b.column(c), 0).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn scope_functions_follow_the_scope_algebra() {
        let row = one_row(
            "SELECT scope_covers('patient/Observation.read launch/patient', 'Observation', 'search-type'),
                    scope_covers(make_array('patient/Observation.rs'), 'Condition', 'read'),
                    scope_covers('user/*.cruds', 'Claim', 'cud'),
                    scope_covers('patient/*.rs', 'Patient', 'operation'),
                    scope_is_wildcard('patient/*.read'),
                    scope_is_wildcard('patient/Observation.read'),
                    scope_normalize('patient/Observation.read'),
                    scope_context('system/Patient.rs'),
                    scope_context('openid')",
        )
        .await;
        assert_eq!(
            row,
            [
                "true",
                "false",
                "true",
                "",
                "true",
                "false",
                "patient/Observation.rs",
                "system",
                ""
            ]
        );
    }

    #[tokio::test]
    async fn fhir_functions_follow_the_request_grammar() {
        let row = one_row(
            "SELECT fhir_resource_type('Observation?patient=p1&category=laboratory'),
                    fhir_interaction('GET', 'Observation?patient=p1'),
                    fhir_interaction('POST', 'Patient/$export'),
                    fhir_interaction('get', 'Patient/123'),
                    fhir_patient('Observation?patient=Patient/p7'),
                    fhir_patient('Observation?patient=p1,p2'),
                    fhir_resource_type('https://ehr.example.org/fhir/Condition/9')",
        )
        .await;
        assert_eq!(
            row,
            [
                "Observation",
                "search-type",
                "operation",
                "read",
                "p7",
                "",
                "Condition"
            ]
        );
    }
}
