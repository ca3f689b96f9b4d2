//! The operator's TOML documents: app registry, `--rules` settings, silences and gateway
//! mappings. Each gives a value or an error naming the problem, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopewatch_core::alert::silence::Silences;
use scopewatch_core::detect::rules::settings::RuleSettings;
use scopewatch_core::event::Timestamp;
use scopewatch_core::registry::Registry;
use scopewatch_ingest::format::GatewayMapping;

fuzz_target!(|text: &str| {
    let _ = Registry::parse(text);
    let _ = RuleSettings::parse(text, "fuzz.toml");
    let _ = Silences::parse(
        text,
        "fuzz.toml",
        "fuzz",
        Timestamp::from_unix_seconds(1_709_251_200),
    );
    let _ = GatewayMapping::parse(text);
});
