//! Judges accesses outside the engine with the engine's own [`explain`](super::explain): from
//! what the log recorded with each access (its token's granted scopes and launch patient) and
//! what earlier events showed (revocations, exports the app started, the first patient a
//! Keycloak-launched token named). The least-privilege ledger replays the history store with
//! it; the history writer stores its verdict with every access row (`scope_fit`).
//!
//! The replay knows no token lifetimes, so it never calls a token expired: expiry is the
//! engine's finding, not a permission question.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::explain::{
    explain_with_token, first_patient_of, read_in_context, ExplainContext, EXPORT_FOLLOWUP_SECONDS,
};
use super::explain::{Explained, Verdict};
use super::tokens::TokenInfo;
use crate::event::{AccessEvent, Common, Text, Timestamp, MICROS_PER_SECOND};
use crate::smart::request::{Classifier, FhirRequest, Method};
use crate::smart::scope::{ScopeMemo, ScopeSet};

/// One stored access; identical ones may be folded into `count`.
#[derive(Clone, Debug)]
pub struct ServedAccess<'a> {
    pub time: Timestamp,
    pub client_id: &'a str,
    pub token_id: Option<&'a str>,
    pub method: Method,
    pub url: &'a str,
    pub status: u16,
    /// The token's granted scopes as recorded with the access (None: the token was unknown).
    pub granted: Option<&'a str>,
    /// The token's launch patient (PHI: only compared, never kept).
    pub token_patient: Option<&'a str>,
    /// The patient the log says was served (PHI: only compared, never kept).
    pub patient: Option<&'a str>,
    pub patient_count: Option<u64>,
    pub count: u64,
}

/// What the log recorded of an access's token beside the access (both None: unknown token).
#[derive(Clone, Debug, Default)]
pub struct RecordedToken<'a> {
    /// The granted scopes, parsed.
    pub scopes: Option<Arc<ScopeSet>>,
    /// The launch patient (PHI: only compared, never kept).
    pub patient: Option<&'a str>,
}

/// What one access showed, for whoever stores or counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub verdict: Verdict,
    /// For a gap, the permission the token lacked (`patient/Observation.rs`).
    pub missing_permission: Option<String>,
}

/// The memory of a replay. `limit` bounds each map (a long-running writer); when one is full
/// it starts over, as the history writer's token map does.
#[derive(Debug)]
pub struct Replay {
    classifier: Classifier,
    limit: usize,
    parsed: ScopeMemo,
    /// When each app last started a Bulk Data export: its status polls and files within the
    /// engine's follow-up window need no scope.
    exporting: BTreeMap<String, Timestamp>,
    /// Revocations by token id: a revoked token's later requests are not honest use.
    revoked: BTreeMap<String, Timestamp>,
    /// For patient launches whose patient was not recorded (Keycloak), the first patient each
    /// token named, as the engine keeps it (PHI: memory only, never printed).
    first_patients: BTreeMap<String, Text>,
}

impl Replay {
    /// A replay that remembers everything (a batch over one store window).
    pub fn new(classifier: Classifier) -> Replay {
        Replay::bounded(classifier, usize::MAX)
    }

    /// A replay whose maps hold at most `limit` entries each.
    pub fn bounded(classifier: Classifier, limit: usize) -> Replay {
        Replay {
            classifier,
            limit: limit.max(1),
            parsed: ScopeMemo::default(),
            exporting: BTreeMap::new(),
            revoked: BTreeMap::new(),
            first_patients: BTreeMap::new(),
        }
    }

    /// The parsed form of a granted scope string, parsed once.
    pub fn scopes(&mut self, scope_string: &str) -> Arc<ScopeSet> {
        self.parsed.parse(scope_string)
    }

    /// An export `client_id` started at `time` (a restarted writer learns the engine's from its
    /// checkpoint).
    pub fn export_started(&mut self, client_id: &str, time: Timestamp) {
        insert(&mut self.exporting, self.limit, client_id.to_string(), time);
    }

    /// The first patient a launch token without a recorded patient named (from a checkpoint).
    pub fn remember_first_patient(&mut self, token_id: &str, patient: Text) {
        insert(
            &mut self.first_patients,
            self.limit,
            token_id.to_string(),
            patient,
        );
    }

    /// A token revoked at `time` (RFC 7009); the first revocation counts.
    pub fn revoke(&mut self, token_id: &str, time: Timestamp) {
        if !self.revoked.contains_key(token_id) {
            insert(&mut self.revoked, self.limit, token_id.to_string(), time);
        }
    }

    /// Explains one stored access and hands the explanation (with the access as an event and
    /// the token's scopes) to `use_it`; remembers what later accesses depend on.
    pub fn explain<R>(
        &mut self,
        access: &ServedAccess<'_>,
        use_it: impl FnOnce(&Explained<'_>, &AccessEvent, Option<&ScopeSet>) -> R,
    ) -> R {
        let event = access_event(access);
        let token = RecordedToken {
            scopes: access.granted.map(|g| self.scopes(g)),
            patient: access.token_patient,
        };
        let request = self.classifier.classify(event.method, &event.url);
        self.explain_event(&event, request, token, |explained, scopes| {
            use_it(explained, &event, scopes)
        })
    }

    /// As [`Replay::explain`], for an access event as read and the request its caller already
    /// classified from it (the history writer: no copy, no second parse).
    pub fn explain_event<'e, R>(
        &mut self,
        event: &'e AccessEvent,
        request: FhirRequest<'e>,
        token: RecordedToken<'_>,
        use_it: impl FnOnce(&Explained<'_>, Option<&ScopeSet>) -> R,
    ) -> R {
        let client = event.common.client_id.as_str();
        let scopes = token.scopes;
        let time = event.common.time;
        let context = ExplainContext {
            export_in_progress: self
                .exporting
                .get(client)
                .is_some_and(|at| time.0 - at.0 <= EXPORT_FOLLOWUP_SECONDS * MICROS_PER_SECOND),
        };
        let request = read_in_context(request, context);
        // A token only its revocation was logged for is judged revoked, as the engine keeps it.
        let scopes = scopes.or_else(|| {
            let id = event.token_id.as_deref()?;
            self.revoked.contains_key(id).then(|| self.scopes(""))
        });
        let info = scopes
            .as_ref()
            .map(|s| self.token_of(event, token.patient, s.clone()));
        let explained = explain_with_token(event, info.as_ref(), request, context);
        if explained.served && explained.request.is_bulk_export() {
            self.export_started(client, time);
        }
        if let Some((token_id, patient)) = first_patient_of(&explained, event) {
            self.remember_first_patient(&token_id, patient);
        }
        use_it(&explained, scopes.as_deref())
    }

    /// The verdict on one access and, for a gap, what was missing.
    pub fn judge(&mut self, access: &ServedAccess<'_>) -> Judged {
        self.explain(access, |explained, _, _| Judged {
            verdict: explained.verdict(),
            missing_permission: explained.missing_permission(),
        })
    }

    /// The token as the log recorded it with the access, with what the replay learnt of it
    /// (revocation, first patient). Its lifetime is unknown here (`lifetime_assumed`), so it is
    /// never judged expired.
    fn token_of(
        &self,
        event: &AccessEvent,
        patient: Option<&str>,
        scopes: Arc<ScopeSet>,
    ) -> TokenInfo {
        let id = event.token_id.as_deref().unwrap_or("");
        TokenInfo {
            token_id: Text::from(id),
            client_id: event.common.client_id.clone(),
            grant_type: None,
            scopes,
            patient: patient.map(Text::from),
            user: None,
            issued_at: event.common.time,
            expires_at: event.common.time,
            lifetime_assumed: true,
            revoked_at: event
                .token_id
                .as_deref()
                .and_then(|t| self.revoked.get(t).copied()),
            first_patient: self.first_patients.get(id).cloned(),
        }
    }
}

fn insert<V>(map: &mut BTreeMap<String, V>, limit: usize, key: String, value: V) {
    if map.len() >= limit && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

fn access_event(access: &ServedAccess<'_>) -> AccessEvent {
    AccessEvent {
        common: Common {
            time: access.time,
            client_id: Text::from(access.client_id),
            user: None,
            source_ip: None,
            user_agent: None,
        },
        method: access.method,
        url: access.url.to_string(),
        status: access.status,
        token_id: access.token_id.map(Text::from),
        resources_returned: None,
        bytes: None,
        patient: access.patient.map(Text::from),
        patient_count: access.patient_count,
        purpose_of_use: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access<'a>(url: &'a str, granted: Option<&'a str>, status: u16) -> ServedAccess<'a> {
        ServedAccess {
            time: Timestamp(1_700_000_000_000_000),
            client_id: "app",
            token_id: Some("t1"),
            method: Method::Get,
            url,
            status,
            granted,
            token_patient: Some("p1"),
            patient: None,
            patient_count: None,
            count: 1,
        }
    }

    fn verdict(replay: &mut Replay, url: &str, granted: Option<&str>, status: u16) -> Judged {
        replay.judge(&access(url, granted, status))
    }

    #[test]
    fn a_gap_names_the_missing_permission_and_a_covered_read_is_explained() {
        let mut replay = Replay::new(Classifier::new());
        let granted = Some("launch/patient patient/Observation.rs");
        let gap = verdict(&mut replay, "DocumentReference?patient=p1", granted, 200);
        assert_eq!(gap.verdict, Verdict::Gap);
        assert_eq!(
            gap.missing_permission.as_deref(),
            Some("patient/DocumentReference.s")
        );
        let fine = verdict(&mut replay, "Observation?patient=p1", granted, 200);
        assert_eq!(
            (fine.verdict, fine.missing_permission),
            (Verdict::Explained, None)
        );
        let refused = verdict(&mut replay, "DocumentReference?patient=p1", granted, 403);
        assert_eq!(refused.verdict, Verdict::NotServed);
        let unknown = verdict(&mut replay, "Observation?patient=p1", None, 200);
        assert_eq!(unknown.verdict, Verdict::UnknownToken);
    }

    /// Bulk Data Access IG, "Bulk Data Status Request" / "File Request": the status and file
    /// URLs belong to the kick-off, so they are judged with it, not as resource reads.
    #[test]
    fn export_followups_are_explained_after_the_kick_off_and_unexplained_before() {
        let mut replay = Replay::new(Classifier::new());
        let granted = Some("system/Observation.rs");
        let before = verdict(&mut replay, "bulkstatus/job-1", granted, 200);
        assert_eq!(before.verdict, Verdict::Unexplained);
        // Bulk Data "Response - Success": the kick-off answers 202 Accepted.
        let kick_off = verdict(
            &mut replay,
            "Group/g1/$export?_type=Observation",
            granted,
            202,
        );
        assert_eq!(kick_off.verdict, Verdict::Explained);
        let after = verdict(&mut replay, "bulkstatus/job-1", granted, 200);
        assert_eq!(after.verdict, Verdict::Explained);
        // As the engine: the follow-ups of a kick-off belong to it for 48 hours.
        let late = ServedAccess {
            time: Timestamp(
                1_700_000_000_000_000 + (EXPORT_FOLLOWUP_SECONDS + 1) * MICROS_PER_SECOND,
            ),
            ..access("bulkstatus/job-1", granted, 200)
        };
        assert_eq!(replay.judge(&late).verdict, Verdict::Unexplained);
    }

    /// RFC 7009: a revoked token's later use is its own verdict, not an explained access.
    #[test]
    fn a_revoked_token_is_judged_revoked_from_its_revocation_on() {
        let mut replay = Replay::new(Classifier::new());
        replay.revoke("t1", Timestamp(1_600_000_000_000_000));
        let used = verdict(
            &mut replay,
            "DocumentReference?patient=p1",
            Some("patient/Observation.rs"),
            200,
        );
        assert_eq!(used.verdict, Verdict::Revoked);
        assert_eq!(
            used.missing_permission, None,
            "only a gap names what was missing"
        );
    }

    #[test]
    fn a_bounded_replay_starts_a_full_map_over() {
        let mut replay = Replay::bounded(Classifier::new(), 2);
        for client in ["a", "b", "c"] {
            replay.export_started(client, Timestamp(0));
        }
        assert_eq!(replay.exporting.len(), 1);
        assert!(replay.exporting.contains_key("c"));
        // Parsed scope strings are the core's bounded memo's (smart::scope::memo).
        let a = replay.scopes("patient/Observation.rs");
        assert!(Arc::ptr_eq(&a, &replay.scopes("patient/Observation.rs")));
    }
}
