//! The FHIR AuditEvent (R4, R5, BALP; single resources, Bundles and arrays) line decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopewatch_ingest::format::{decode_line, Decoded};
use scopewatch_ingest::{DecodeOptions, InputFormat};

fuzz_target!(|text: &str| {
    let options = DecodeOptions {
        format: InputFormat::AuditEvent,
        ..DecodeOptions::default()
    };
    decode_line(text, &options, &mut |d: Decoded| drop(d));
});
