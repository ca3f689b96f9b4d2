//! Keycloak events: JSON event listener lines, jboss-logging lines with or without a prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopewatch_core::event::Timestamp;
use scopewatch_ingest::format::{decode_line, Decoded, KeycloakOptions};
use scopewatch_ingest::{DecodeOptions, InputFormat};

fuzz_target!(|text: &str| {
    let options = DecodeOptions {
        format: InputFormat::Keycloak,
        // A console log's lines carry only a time of day; the date comes from the operator.
        keycloak: KeycloakOptions {
            log_date: Some(Timestamp::from_unix_seconds(1_709_251_200)),
        },
    };
    decode_line(text, &options, &mut |d: Decoded| drop(d));
});
