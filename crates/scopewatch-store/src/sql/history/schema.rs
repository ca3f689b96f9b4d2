//! Schemas of the history tables. Plain Arrow/Parquet types (UTC microsecond timestamps, UTF-8
//! strings, 64-bit integers, lists of strings) so DuckDB, Spark, Trino and DataFusion read the
//! files as they are. The Hive partition column `date` is in the path, not in the files.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn list_of_strings() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// `access`: one row per accepted access event.
pub fn access_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("time", ts(), false),
        Field::new("client_id", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, true),
        Field::new("source_ip", DataType::Utf8, true),
        Field::new("user_agent", DataType::Utf8, true),
        Field::new("token_id", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("status", DataType::Int32, false),
        Field::new("resources_returned", DataType::Int64, true),
        Field::new("bytes", DataType::Int64, true),
        // The patient the access concerned: the event's `patient`, else the one patient the
        // URL names (compartment search, `Patient/<id>`). PHI.
        Field::new("patient", DataType::Utf8, true),
        Field::new("patient_count", DataType::Int64, true),
        Field::new("purpose_of_use", DataType::Utf8, true),
        // Parsed from method + URL (smart::request grammar).
        Field::new("resource_type", DataType::Utf8, true),
        Field::new("interaction", DataType::Utf8, false),
        Field::new("operation", DataType::Utf8, true),
        Field::new("patient_scope", DataType::Utf8, false),
        Field::new("population_level", DataType::Boolean, false),
        Field::new("page_size", DataType::Int64, true),
        // From the token the access used, when the token event was in the same run.
        Field::new("granted_scopes", list_of_strings(), true),
        Field::new("token_patient", DataType::Utf8, true),
        // The engine's verdict on the access against its token (detect::explain, replayed by
        // the writer): explained, not_served, gap, revoked, unverified, unexplained or
        // unknown_token. NULL in files written before the column existed.
        Field::new("scope_fit", DataType::Utf8, true),
        // For a gap, the permission the token lacked (`patient/DocumentReference.rs`).
        Field::new("missing_permission", DataType::Utf8, true),
        // The granted scopes (canonical) that served an explained or unverified access; NULL
        // when the token is unknown.
        Field::new("used_scopes", list_of_strings(), true),
    ]))
}

/// `tokens`: one row per accepted token event.
pub fn tokens_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("time", ts(), false),
        Field::new("client_id", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, true),
        Field::new("source_ip", DataType::Utf8, true),
        Field::new("user_agent", DataType::Utf8, true),
        Field::new("event", DataType::Utf8, false),
        Field::new("token_id", DataType::Utf8, true),
        Field::new("grant_type", DataType::Utf8, true),
        Field::new("scope_requested", DataType::Utf8, true),
        Field::new("scope_granted", DataType::Utf8, true),
        // The granted scopes normalised one by one (v2 letters, subsumed scopes folded).
        Field::new("granted_scopes", list_of_strings(), true),
        // The broadest context granted: patient, user or system.
        Field::new("context", DataType::Utf8, true),
        Field::new("patient", DataType::Utf8, true),
        Field::new("expires_in", DataType::Int64, true),
    ]))
}

/// `alerts`: one row per alert record (create or update).
pub fn alerts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("incident_id", DataType::Utf8, false),
        Field::new("activity", DataType::Utf8, false),
        Field::new("revision", DataType::Int64, false),
        Field::new("time", ts(), false),
        Field::new("client_id", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("score", DataType::Int64, false),
        Field::new("summary", DataType::Utf8, false),
        Field::new("window_start", ts(), false),
        Field::new("window_end", ts(), false),
        // JSON text, as in the NDJSON alert record.
        Field::new("observed", DataType::Utf8, false),
        Field::new("baseline", DataType::Utf8, false),
        Field::new("evidence", DataType::Utf8, false),
        // What recurs in the incident (resource type and interaction, a scope; empty when the
        // rule has one cause per app): what a silence's `cause` names.
        Field::new("cause", DataType::Utf8, true),
        // The silence (`FILE#N`) that kept this record out of the outputs; NULL when emitted.
        Field::new("suppressed_by", DataType::Utf8, true),
    ]))
}

/// `dead_letter`: one row per rejected line or late event.
pub fn dead_letter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::Int64, true),
        Field::new("offset", DataType::Int64, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
        Field::new("raw_truncated", DataType::Boolean, false),
        Field::new("raw_bytes", DataType::Int64, false),
    ]))
}
