//! The canonical contract's line parser: any bytes give an event or a reject, never a panic;
//! an accepted event stays within the size bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopewatch_core::event::{parse_event, within_bounds};

fuzz_target!(|line: &[u8]| {
    if let Ok(event) = parse_event(line) {
        assert!(
            within_bounds(event).is_ok(),
            "an accepted event broke the size bounds"
        );
    }
});
