//! The RFC 3339 parser: any text gives a time or an error, and an accepted time prints as an
//! RFC 3339 string that parses back to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopewatch_core::event::Timestamp;

fuzz_target!(|text: &str| {
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        let printed = t.to_rfc3339();
        assert_eq!(
            Timestamp::parse_rfc3339(&printed),
            Ok(t),
            "{text:?} printed as {printed:?}"
        );
    }
});
