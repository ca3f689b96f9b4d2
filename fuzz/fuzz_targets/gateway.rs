//! Gateway JSON access logs through the built-in nginx and Envoy mappings, and the `auto`
//! format's sniffing (which must never turn an access into a skipped record by its values).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use scopewatch_ingest::format::{decode_line, Decoded, GatewayMapping};
use scopewatch_ingest::{DecodeOptions, InputFormat};

/// The built-in mappings, loaded once (parsing their TOML on every input would dominate).
fn mappings() -> &'static [DecodeOptions] {
    static MAPPINGS: OnceLock<Vec<DecodeOptions>> = OnceLock::new();
    MAPPINGS.get_or_init(|| {
        ["nginx", "envoy"]
            .into_iter()
            .map(|name| match GatewayMapping::load(name) {
                Ok(mapping) => DecodeOptions {
                    format: InputFormat::Gateway(Arc::new(mapping)),
                    ..DecodeOptions::default()
                },
                Err(e) => panic!("built-in mapping {name} does not load: {e}"),
            })
            .collect()
    })
}

fuzz_target!(|text: &str| {
    for options in mappings() {
        decode_line(text, options, &mut |d: Decoded| drop(d));
    }
    let auto = DecodeOptions {
        format: InputFormat::Auto,
        ..DecodeOptions::default()
    };
    decode_line(text, &auto, &mut |d: Decoded| drop(d));
});
