//! The detection core: events in (in any order within the allowed lateness), alerts out.
//! Synchronous and deterministic; batch, streaming and tests drive the same code.

use crate::alert::Alert;
use crate::event::{Event, Timestamp};
use crate::registry::Registry;
use crate::smart::request::Classifier;

use super::explain::explain;
use super::incidents::Incidents;
use super::order::{LateEvent, ReorderBuffer, DEFAULT_LATENESS_SECONDS};
use super::rules;
use super::tokens::{TokenCache, TokenCacheConfig};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub lateness_seconds: i64,
    pub token_cache: TokenCacheConfig,
    /// Incident windows align to buckets of this size.
    pub bucket_seconds: i64,
    /// An incident closes after this long without findings.
    pub quiet_seconds: i64,
    pub fhir_base: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lateness_seconds: DEFAULT_LATENESS_SECONDS,
            token_cache: TokenCacheConfig::default(),
            bucket_seconds: 3600,
            quiet_seconds: 3600,
            fhir_base: None,
        }
    }
}

/// Counts of what the core did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    pub late: u64,
    pub accesses: u64,
    pub explained: u64,
    pub unknown_token: u64,
    pub findings: u64,
}

pub struct Engine {
    registry: Registry,
    classifier: Classifier,
    order: ReorderBuffer,
    tokens: TokenCache,
    incidents: Incidents,
    stats: EngineStats,
    now: Option<Timestamp>,
}

impl Engine {
    pub fn new(config: EngineConfig, registry: Registry) -> Engine {
        Engine {
            registry,
            classifier: config
                .fhir_base
                .as_deref()
                .map_or_else(Classifier::new, Classifier::with_base),
            order: ReorderBuffer::new(config.lateness_seconds),
            tokens: TokenCache::new(config.token_cache),
            incidents: Incidents::new(config.bucket_seconds, config.quiet_seconds),
            stats: EngineStats::default(),
            now: None,
        }
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Takes one event; processes every buffered event the watermark has passed. A late event
    /// is handed back for the caller to count and dead-letter.
    pub fn push(&mut self, event: Event, out: &mut Vec<Alert>) -> Result<(), Box<LateEvent>> {
        if let Err(late) = self.order.push(event) {
            self.stats.late += 1;
            return Err(late);
        }
        while let Some(ready) = self.order.pop_ready() {
            self.process(ready, out);
        }
        Ok(())
    }

    /// End of input: processes everything buffered and closes open incidents.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        while let Some(ready) = self.order.pop_any() {
            self.process(ready, out);
        }
        self.incidents.close_all(out);
    }

    fn process(&mut self, event: Event, out: &mut Vec<Alert>) {
        self.stats.events += 1;
        let time = event.time();
        if self.now.is_none_or(|n| time > n) {
            self.now = Some(time);
            self.tokens.expire(time);
            self.incidents.close_quiet(time, out);
        }
        let mut findings = Vec::new();
        match &event {
            Event::Token(t) => {
                self.tokens.apply(t);
                if let Some(granted) = t.scope_granted.as_deref() {
                    let granted = crate::smart::scope::ScopeSet::parse(granted);
                    findings.extend(rules::registry::check_token(t, &granted, &self.registry));
                }
            }
            Event::Access(a) => {
                self.stats.accesses += 1;
                let explained = explain(a, &self.tokens, &self.classifier);
                if explained.is_explained() {
                    self.stats.explained += 1;
                }
                if explained.scopes == super::explain::ScopeFit::UnknownToken {
                    self.stats.unknown_token += 1;
                }
                findings.extend(rules::enforcement::check(a, &explained));
                findings.extend(rules::registry::check_access(a, &self.registry));
            }
        }
        for f in findings {
            self.stats.findings += 1;
            self.incidents.record(f, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Activity, Category, Severity};
    use crate::event::parse_event_str;

    fn run(lines: &[String], registry: &str) -> (Vec<Alert>, EngineStats) {
        let mut engine = Engine::new(EngineConfig::default(), Registry::parse(registry).unwrap());
        let mut out = Vec::new();
        for l in lines {
            engine.push(parse_event_str(l).unwrap(), &mut out).unwrap();
        }
        engine.finish(&mut out);
        (out, engine.stats().clone())
    }

    fn token(at: &str, client: &str, id: &str, scopes: &str, patient: Option<&str>) -> String {
        let patient = patient.map_or(String::new(), |p| format!(r#","patient":"{p}""#));
        format!(
            r#"{{"type":"token","event":"issued","time":"{at}","client_id":"{client}","token_id":"{id}","grant_type":"authorization_code","scope_granted":"{scopes}","expires_in":3600{patient}}}"#
        )
    }
    fn access(at: &str, client: &str, id: &str, url: &str, status: u16, purpose: &str) -> String {
        format!(
            r#"{{"type":"access","time":"{at}","client_id":"{client}","token_id":"{id}","method":"GET","url":"{url}","status":{status},"purpose_of_use":"{purpose}"}}"#
        )
    }

    #[test]
    fn enforcement_gap_names_app_category_and_window() {
        let mut lines = vec![
            token(
                "2024-03-05T14:00:00Z",
                "chart",
                "t1",
                "launch/patient patient/Observation.read",
                Some("p1"),
            ),
            token(
                "2024-03-05T14:00:00Z",
                "quiet",
                "t2",
                "launch/patient patient/*.read",
                Some("p2"),
            ),
        ];
        for m in 1..20 {
            lines.push(access(
                &format!("2024-03-05T14:{m:02}:00Z"),
                "chart",
                "t1",
                "Observation?patient=p1",
                200,
                "TREAT",
            ));
            lines.push(access(
                &format!("2024-03-05T14:{m:02}:30Z"),
                "quiet",
                "t2",
                "Condition?patient=p2",
                200,
                "TREAT",
            ));
        }
        // Out of scope, served: the gap. Arrives a little out of order.
        lines.push(access(
            "2024-03-05T14:25:00Z",
            "chart",
            "t1",
            "Condition?patient=p1",
            200,
            "TREAT",
        ));
        lines.push(access(
            "2024-03-05T14:24:00Z",
            "chart",
            "t1",
            "Condition?patient=p1",
            200,
            "TREAT",
        ));
        lines.push(access(
            "2024-03-05T14:26:00Z",
            "chart",
            "t1",
            "Condition?patient=p1",
            403,
            "TREAT",
        ));
        let (alerts, stats) = run(&lines, "");
        assert_eq!(stats.late, 0);
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        let a = &alerts[0];
        assert_eq!(
            (a.client_id.as_str(), a.category, a.rule),
            ("chart", Category::ScopeCreep, "enforcement_gap")
        );
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.activity, Activity::Create);
        assert_eq!(
            a.window.start,
            Timestamp::parse_rfc3339("2024-03-05T14:00:00Z").unwrap()
        );
        assert_eq!(
            a.time,
            Timestamp::parse_rfc3339("2024-03-05T14:24:00Z").unwrap(),
            "raised at the first gap in event time"
        );
        assert_eq!(a.evidence.example_requests, vec!["GET Condition?patient=…"]);
        assert_eq!(a.observed["missing_permission"], "s");
        assert_eq!(alerts[1].activity, Activity::Update);
        assert_eq!(
            alerts[1].evidence.counts["findings"], 2,
            "the 403 is not a gap"
        );
        assert_eq!(stats.accesses, 41);
    }

    #[test]
    fn same_input_same_ids_in_any_order_within_lateness() {
        let lines = vec![
            token(
                "2024-03-05T14:00:00Z",
                "chart",
                "t1",
                "patient/Observation.rs",
                Some("p1"),
            ),
            access(
                "2024-03-05T14:01:00Z",
                "chart",
                "t1",
                "Condition?patient=p1",
                200,
                "TREAT",
            ),
            access(
                "2024-03-05T14:02:00Z",
                "chart",
                "t1",
                "Observation?patient=p9",
                200,
                "TREAT",
            ),
        ];
        let (a, _) = run(&lines, "");
        let reversed: Vec<String> = lines.iter().rev().cloned().collect();
        let (b, _) = run(&reversed, "");
        let ids = |v: &[Alert]| v.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert!(!a.is_empty());
    }

    #[test]
    fn registry_rules() {
        let registry = r#"
[[app]]
client_id = "chart"
purpose = ["TREAT"]
allowed_scopes = "launch/patient patient/Observation.read"
modes = ["patient"]
"#;
        let lines = vec![
            // A v2 re-spelling of the registered scope: no violation.
            token(
                "2024-03-05T14:00:00Z",
                "chart",
                "t1",
                "launch/patient patient/Observation.rs",
                Some("p1"),
            ),
            access(
                "2024-03-05T14:01:00Z",
                "chart",
                "t1",
                "Observation?patient=p1",
                200,
                "TREAT",
            ),
            // Broader than registered, in user context, for marketing.
            token(
                "2024-03-05T15:00:00Z",
                "chart",
                "t2",
                "launch/patient user/*.read",
                None,
            ),
            access(
                "2024-03-05T15:01:00Z",
                "chart",
                "t2",
                "Observation?code=x",
                200,
                "HMARKT",
            ),
            // Not in the registry: silent.
            token("2024-03-05T15:00:00Z", "other", "t3", "system/*.*", None),
        ];
        let (alerts, _) = run(&lines, registry);
        let rules: Vec<(&str, &str)> = alerts
            .iter()
            .filter(|a| a.activity == Activity::Create)
            .map(|a| (a.client_id.as_str(), a.rule))
            .collect();
        assert_eq!(
            rules,
            vec![
                ("chart", "registry_scope_violation"),
                ("chart", "registry_mode_violation"),
                ("chart", "registry_purpose_violation"),
            ]
        );
        let scope = &alerts[0];
        assert_eq!(
            scope.severity,
            Severity::High,
            "wildcard + context escalation"
        );
        assert_eq!(scope.observed["outside_registration"][0], "user/*.rs");
        assert_eq!(alerts[2].category, Category::PurposeDrift);
    }
}
