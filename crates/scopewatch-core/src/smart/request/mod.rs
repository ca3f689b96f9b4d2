//! FHIR request grammar: interaction, resource type, id, operation, patient compartment,
//! paging, page size and the SMART permission a request needs — from method + URL alone.

mod classify;
mod compartment;
mod include_targets;
mod method;
pub mod query;
mod resource_types;
mod shape;
mod types;

pub use classify::{classify, Classifier};
pub use compartment::{
    is_known_resource_type, is_patient_compartment_type, known_resource_type, patient_link_params,
};
pub use method::Method;
pub use shape::request_shape;
pub use types::{
    FhirRequest, Interaction, OperationLevel, Paging, PatientScope, Requirement, EXPORT_LEVELS,
};
