//! What a FHIR request is, as derived from its method and URL.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::smart::scope::{Perms, ResourceTarget};

/// FHIR RESTful interaction (codes from `http://hl7.org/fhir/restful-interaction`, plus the
/// few request kinds a log shows that are not FHIR interactions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interaction {
    Read,
    Vread,
    Update,
    Patch,
    Delete,
    Create,
    SearchType,
    SearchSystem,
    SearchCompartment,
    HistoryInstance,
    HistoryType,
    HistorySystem,
    Capabilities,
    /// `POST [base]` with a Bundle: batch or transaction (the URL does not tell which).
    BatchTransaction,
    Operation,
    /// A next-page fetch whose URL does not repeat the search (HAPI `_getpages`).
    Page,
    /// SMART discovery (`.well-known/smart-configuration`): not FHIR data.
    Discovery,
    /// Bulk Data status polling on a server-specific path (e.g. `bulkstatus/…`).
    BulkStatus,
    /// Bulk Data output file download on a server-specific path (e.g. `bulkfiles/…`).
    BulkDownload,
    Unknown,
}

impl Interaction {
    pub fn as_str(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Vread => "vread",
            Interaction::Update => "update",
            Interaction::Patch => "patch",
            Interaction::Delete => "delete",
            Interaction::Create => "create",
            Interaction::SearchType => "search-type",
            Interaction::SearchSystem => "search-system",
            Interaction::SearchCompartment => "search-compartment",
            Interaction::HistoryInstance => "history-instance",
            Interaction::HistoryType => "history-type",
            Interaction::HistorySystem => "history-system",
            Interaction::Capabilities => "capabilities",
            Interaction::BatchTransaction => "batch-transaction",
            Interaction::Operation => "operation",
            Interaction::Page => "page",
            Interaction::Discovery => "discovery",
            Interaction::BulkStatus => "bulk-status",
            Interaction::BulkDownload => "bulk-download",
            Interaction::Unknown => "unknown",
        }
    }

    pub fn is_search(self) -> bool {
        matches!(
            self,
            Interaction::SearchType
                | Interaction::SearchSystem
                | Interaction::SearchCompartment
                | Interaction::HistoryType
                | Interaction::HistorySystem
                | Interaction::Page
        )
    }
}

impl fmt::Display for Interaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose data the request reaches, as far as the URL shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatientScope<'a> {
    /// Not patient data (capabilities, terminology, a non-compartment type such as Medication).
    NotPatientData,
    /// One patient, by logical id.
    Patient(Cow<'a, str>),
    /// Several patients listed in one parameter (`patient=1,2,3`).
    Patients(Vec<Cow<'a, str>>),
    /// A patient named by a chained identifier (`patient.identifier=…`), not by id.
    PatientByIdentifier,
    /// One resource instance of a compartment type; its patient is not in the URL.
    Instance,
    /// A compartment type searched with no patient constraint: population-level.
    Unconstrained,
    /// Explicitly all patients or a cohort (`Patient/$everything`, `$export`, `Group/…/$export`).
    AllPatients,
    /// The URL does not tell (body-borne parameters, paging tokens, batch bundles, unknown).
    Unknown,
}

impl PatientScope<'_> {
    pub fn as_str(&self) -> &'static str {
        match self {
            PatientScope::NotPatientData => "not-patient-data",
            PatientScope::Patient(_) => "patient",
            PatientScope::Patients(_) => "patients",
            PatientScope::PatientByIdentifier => "patient-by-identifier",
            PatientScope::Instance => "instance",
            PatientScope::Unconstrained => "unconstrained",
            PatientScope::AllPatients => "all-patients",
            PatientScope::Unknown => "unknown",
        }
    }
}

/// How a request continues an earlier search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Paging {
    /// HAPI `_getpages=<id>` (with `_getpagesoffset`).
    HapiGetPages,
    /// Microsoft `ct=<continuation token>`.
    ContinuationToken,
    /// Google `_page_token`.
    PageToken,
    /// `page=N` or `_offset=N` style offsets.
    Offset,
}

/// The Bulk Data kick-off endpoints, from the one that reaches least to the one that reaches
/// most (Bulk Data Access IG 2.0, "Bulk Data Kick-off Request"): a Group's members
/// (`Group/[id]/$export`), every patient (`Patient/$export`), all data (`$export`).
pub const EXPORT_LEVELS: [&str; 3] = ["$export Group", "$export Patient", "$export system"];

/// Which level an operation is invoked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationLevel {
    System,
    Type,
    Instance,
}

/// The SMART permission a request needs: letters on a resource type (or on `*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub resource: ResourceTarget,
    pub perms: Perms,
}

/// A FHIR request classified from method + URL. Borrowed from the URL where it can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FhirRequest<'a> {
    pub interaction: Interaction,
    /// The resource type acted on (for a compartment search, the searched type).
    pub resource_type: Option<&'static str>,
    /// Logical id in the path (instance-level requests). May identify a patient: never log it.
    pub resource_id: Option<Cow<'a, str>>,
    /// Operation name with its `$`, e.g. `$export`.
    pub operation: Option<Cow<'a, str>>,
    pub operation_level: Option<OperationLevel>,
    pub patient: PatientScope<'a>,
    /// `_count` (page size) when given.
    pub count: Option<u32>,
    pub paging: Option<Paging>,
    /// Conditional update/patch/delete (`PUT Type?search`): may touch many resources.
    pub conditional: bool,
    /// Types named by `_type` on system-level searches and exports.
    pub types: Vec<&'static str>,
    /// Types that `_include` / `_revinclude` add to the result (when the value names them).
    pub included: Vec<&'static str>,
    /// `_include=*`: every referenced resource, whatever its type.
    pub includes_any: bool,
    /// Search parameters travel in the body (POST `_search`), so the URL shows only part of them.
    pub body_params: bool,
    /// Why the request could not be fully classified (never contains ids or query values).
    pub problem: Option<String>,
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl PatientScope<'_> {
    /// The same scope, owning its ids.
    pub fn into_owned(self) -> PatientScope<'static> {
        match self {
            PatientScope::NotPatientData => PatientScope::NotPatientData,
            PatientScope::Patient(id) => PatientScope::Patient(owned(id)),
            PatientScope::Patients(ids) => {
                PatientScope::Patients(ids.into_iter().map(owned).collect())
            }
            PatientScope::PatientByIdentifier => PatientScope::PatientByIdentifier,
            PatientScope::Instance => PatientScope::Instance,
            PatientScope::Unconstrained => PatientScope::Unconstrained,
            PatientScope::AllPatients => PatientScope::AllPatients,
            PatientScope::Unknown => PatientScope::Unknown,
        }
    }
}

impl FhirRequest<'_> {
    /// The same request, owning what it borrowed from the URL.
    pub fn into_owned(self) -> FhirRequest<'static> {
        FhirRequest {
            resource_id: self.resource_id.map(owned),
            operation: self.operation.map(owned),
            patient: self.patient.into_owned(),
            interaction: self.interaction,
            resource_type: self.resource_type,
            operation_level: self.operation_level,
            count: self.count,
            paging: self.paging,
            conditional: self.conditional,
            types: self.types,
            included: self.included,
            includes_any: self.includes_any,
            body_params: self.body_params,
            problem: self.problem,
        }
    }
}

impl<'a> FhirRequest<'a> {
    pub(crate) fn new(interaction: Interaction) -> FhirRequest<'a> {
        FhirRequest {
            interaction,
            resource_type: None,
            resource_id: None,
            operation: None,
            operation_level: None,
            patient: PatientScope::Unknown,
            count: None,
            paging: None,
            conditional: false,
            types: Vec::new(),
            included: Vec::new(),
            includes_any: false,
            body_params: false,
            problem: None,
        }
    }

    pub(crate) fn unknown(problem: impl Into<String>) -> FhirRequest<'a> {
        let mut r = FhirRequest::new(Interaction::Unknown);
        r.problem = Some(problem.into());
        r
    }

    /// A search (or export, or whole-record dump) over patient data with no single patient:
    /// the main tell of an app that used to work one patient at a time.
    pub fn is_population_level(&self) -> bool {
        matches!(
            self.patient,
            PatientScope::Unconstrained | PatientScope::AllPatients
        )
    }

    /// The patient ids named in the URL (none for population-level or instance requests).
    pub fn patient_ids(&self) -> Vec<&str> {
        match &self.patient {
            PatientScope::Patient(id) => vec![id.as_ref()],
            PatientScope::Patients(ids) => ids.iter().map(AsRef::as_ref).collect(),
            _ => Vec::new(),
        }
    }

    pub fn is_operation(&self, name: &str) -> bool {
        self.operation.as_deref() == Some(name)
    }

    /// Bulk Data kick-off (`$export` at system, Patient or Group level).
    pub fn is_bulk_export(&self) -> bool {
        self.is_operation("$export")
    }

    /// The level of a Bulk Data kick-off, as the key baselines learn it by: one of
    /// [`EXPORT_LEVELS`]; None for any other request (and for `$export` on endpoints the
    /// Bulk Data IG does not define).
    pub fn export_level(&self) -> Option<&'static str> {
        if !self.is_bulk_export() {
            return None;
        }
        match (self.resource_type, self.operation_level) {
            (Some("Group"), Some(OperationLevel::Instance)) => Some(EXPORT_LEVELS[0]),
            (Some("Patient"), Some(OperationLevel::Type)) => Some(EXPORT_LEVELS[1]),
            (None, Some(OperationLevel::System)) => Some(EXPORT_LEVELS[2]),
            _ => None,
        }
    }

    /// A status poll, cancellation or output file of a Bulk Data export.
    pub fn is_bulk_followup(&self) -> bool {
        matches!(
            self.interaction,
            Interaction::BulkStatus | Interaction::BulkDownload
        ) || self.is_operation("$export-poll-status")
    }

    /// A search: its own query decides granular scopes.
    pub fn is_search(&self) -> bool {
        self.interaction.is_search()
    }

    /// Is this a page fetch continuing an earlier search?
    pub fn is_page_followup(&self) -> bool {
        self.paging.is_some()
    }

    /// The SMART permission this request needs; None when it needs none (capabilities,
    /// discovery, status polling) or when it is judged per entry (batch/transaction) or
    /// server-defined (unknown operations).
    pub fn requirement(&self) -> Option<Requirement> {
        let on_type = |perms| {
            self.resource_type.map(|t| Requirement {
                resource: ResourceTarget::Type(t.to_string()),
                perms,
            })
        };
        let on_all = |perms| {
            Some(Requirement {
                resource: ResourceTarget::Any,
                perms,
            })
        };
        match self.interaction {
            Interaction::Read | Interaction::Vread | Interaction::HistoryInstance => {
                on_type(Perms::READ)
            }
            Interaction::SearchType | Interaction::HistoryType | Interaction::SearchCompartment => {
                match self.resource_type {
                    Some(_) => on_type(Perms::SEARCH),
                    None => on_all(Perms::SEARCH),
                }
            }
            Interaction::SearchSystem | Interaction::HistorySystem => on_all(Perms::SEARCH),
            Interaction::Page => None,
            Interaction::Create => on_type(Perms::CREATE),
            Interaction::Update | Interaction::Patch => on_type(if self.conditional {
                Perms::UPDATE.union(Perms::SEARCH)
            } else {
                Perms::UPDATE
            }),
            Interaction::Delete => on_type(if self.conditional {
                Perms::DELETE.union(Perms::SEARCH)
            } else {
                Perms::DELETE
            }),
            Interaction::Operation => self.operation_requirement(),
            // Status and files are judged through the export that started them (Bulk Data:
            // server-chosen URLs, possibly without any token).
            Interaction::BulkDownload
            | Interaction::Capabilities
            | Interaction::BatchTransaction
            | Interaction::Discovery
            | Interaction::BulkStatus
            | Interaction::Unknown => None,
        }
    }

    fn operation_requirement(&self) -> Option<Requirement> {
        let name = self.operation.as_deref()?;
        let perms = match name {
            // R4 Patient-everything returns what the user may see: reading the patient (or
            // encounter) it starts from is the permission it needs.
            "$everything" => Perms::READ,
            "$export" | "$graphql" => {
                return Some(Requirement {
                    resource: ResourceTarget::Any,
                    perms: Perms::V1_READ,
                })
            }
            "$lastn" | "$stats" | "$docref" | "$match" => Perms::SEARCH,
            // Terminology operations (`$expand`, `$lookup`, `$validate-code`, `$translate`,
            // `$subsumes`, `$closure`) are not here: they answer about code systems, not
            // records, and SMART gives operations no letter; server-defined (unexplained), as
            // any operation this table does not name.
            "$meta" | "$document" | "$summary" | "$binary-access-read" => Perms::READ,
            "$meta-add" | "$meta-delete" | "$binary-access-write" => Perms::UPDATE,
            _ => return None,
        };
        self.resource_type.map(|t| Requirement {
            resource: ResourceTarget::Type(t.to_string()),
            perms,
        })
    }
}
