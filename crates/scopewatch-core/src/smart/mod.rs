//! The two grammars the detectors reason with: SMART scopes and FHIR requests.

pub mod request;
pub mod scope;
