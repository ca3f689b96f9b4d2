//! The token cache: what each live access token was granted, so an access event can be
//! explained by its token's scopes and launch context. Bounded: tokens leave when they expire
//! (plus a grace period) or are revoked, and the oldest-expiring go first when it is full.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{Text, Timestamp, TokenAction, TokenEvent, MICROS_PER_SECOND};
use crate::smart::scope::{ScopeMemo, ScopeSet};

use super::lapsed::{LapsedToken, LapsedTokens};

/// What a token was granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: Text,
    pub client_id: Text,
    pub grant_type: Option<Text>,
    /// Granted scopes, normalised (shared: many accesses look them up).
    pub scopes: Arc<ScopeSet>,
    /// Launch patient (PHI).
    pub patient: Option<Text>,
    pub user: Option<Text>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The token's source logged no lifetime and none is configured: `expires_at` is only how
    /// long it is kept for joining accesses, never evidence that it had expired.
    pub lifetime_assumed: bool,
    /// When an RFC 7009 revocation of this token was logged: the token is kept until it would
    /// have expired, so a server that still honours it is seen.
    pub revoked_at: Option<Timestamp>,
    /// For a patient launch its source did not record (Keycloak): the first patient its
    /// requests named, which stands for the launch patient from then on (PHI).
    pub first_patient: Option<Text>,
}

impl TokenInfo {
    /// Revoked before `now`: the server must no longer honour it (RFC 7009 §2).
    pub fn is_revoked_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_some_and(|r| now > r)
    }

    /// Past a lifetime that was logged or configured (an assumed one proves nothing).
    pub fn is_known_expired_at(&self, now: Timestamp) -> bool {
        !self.lifetime_assumed && self.is_expired_at(now)
    }

    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        now > self.expires_at
    }
}

/// The token cache in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenCacheState {
    pub tokens: Vec<TokenState>,
    pub evicted_early: u64,
    /// Tokens that expired and left the cache, oldest first (`lapsed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lapsed: Vec<LapsedToken>,
}

/// One cached token in a snapshot; scopes as the canonical tokens `ScopeSet::to_tokens` gives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenState {
    pub token_id: Text,
    pub client_id: Text,
    pub grant_type: Option<Text>,
    pub scopes: Vec<String>,
    pub patient: Option<Text>,
    pub user: Option<Text>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lifetime_assumed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_patient: Option<Text>,
}

impl From<&TokenInfo> for TokenState {
    fn from(t: &TokenInfo) -> TokenState {
        TokenState {
            token_id: t.token_id.clone(),
            client_id: t.client_id.clone(),
            grant_type: t.grant_type.clone(),
            scopes: t.scopes.to_tokens(),
            patient: t.patient.clone(),
            user: t.user.clone(),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            lifetime_assumed: t.lifetime_assumed,
            revoked_at: t.revoked_at,
            first_patient: t.first_patient.clone(),
        }
    }
}

impl From<TokenState> for TokenInfo {
    fn from(t: TokenState) -> TokenInfo {
        TokenInfo {
            token_id: t.token_id,
            client_id: t.client_id,
            grant_type: t.grant_type,
            scopes: Arc::new(ScopeSet::from_tokens(&t.scopes)),
            patient: t.patient,
            user: t.user,
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            lifetime_assumed: t.lifetime_assumed,
            revoked_at: t.revoked_at,
            first_patient: t.first_patient,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TokenCacheConfig {
    /// How long a token whose lifetime is neither logged (`expires_in`) nor configured is kept
    /// for joining accesses; it is never judged expired.
    pub default_ttl_seconds: i64,
    /// Lifetime of tokens logged without `expires_in` (`--token-lifetime`; Keycloak logs
    /// none): judged expired after it. A registry entry's own lifetime wins.
    pub configured_ttl_seconds: Option<i64>,
    /// How long an expired token is kept, so slightly late accesses still join.
    pub grace_seconds: i64,
    /// How long a token with a known lifetime is remembered, as a small record, after it
    /// expired and left the cache, so a server honouring it much later is still seen.
    pub lapsed_seconds: i64,
    /// Most tokens held at once.
    pub capacity: usize,
    /// Most bytes (`token_bytes`) the held tokens may take; beyond it, as beyond `capacity`,
    /// the soonest to expire leave first.
    pub max_bytes: usize,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        TokenCacheConfig {
            default_ttl_seconds: 3600,
            configured_ttl_seconds: None,
            grace_seconds: 600,
            lapsed_seconds: 86_400,
            capacity: 1_000_000,
            max_bytes: usize::MAX,
        }
    }
}

pub struct TokenCache {
    config: TokenCacheConfig,
    /// Parsed grants by their scope string: an app's tokens mostly carry the same string, so
    /// each distinct string is parsed and normalised once.
    parsed: ScopeMemo,
    by_id: HashMap<Text, TokenInfo>,
    /// Live token ids per client, for accesses logged without a token id.
    by_client: HashMap<Text, BTreeSet<Text>>,
    /// (eviction time, token id), for expiry in time order.
    by_eviction: BTreeSet<(Timestamp, Text)>,
    /// Tokens pushed out by the capacity bound before they expired.
    pub evicted_early: u64,
    /// `token_bytes` of the held tokens.
    bytes: usize,
    /// Tokens that expired and left, for `lapsed_seconds` (at most `capacity` of them; within
    /// `max_bytes` they go first, so the live tokens are evicted as without them).
    lapsed: LapsedTokens,
    /// Tokens pushed out early since the engine last took them (their usage is still to be
    /// folded into their apps' histograms, as for tokens that expire).
    evicted: Vec<TokenInfo>,
}

/// Roughly what one held token takes: its entries in the three indexes, its strings and its
/// parsed grant. Tokens with one scope string share one parsed grant, but each is charged it:
/// an upper bound, the same for the same token (so eviction is deterministic).
pub fn token_bytes(info: &TokenInfo) -> usize {
    const INDEX_ENTRIES: usize = 3 * 64 + std::mem::size_of::<TokenInfo>();
    let texts: usize = [
        info.grant_type.as_ref(),
        info.patient.as_ref(),
        info.user.as_ref(),
        info.first_patient.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|t| t.len())
    .sum();
    INDEX_ENTRIES
        + 3 * info.token_id.len()
        + 2 * info.client_id.len()
        + texts
        + info.scopes.approx_bytes()
}

impl TokenCache {
    pub fn new(config: TokenCacheConfig) -> TokenCache {
        TokenCache {
            config,
            parsed: ScopeMemo::default(),
            by_id: HashMap::new(),
            by_client: HashMap::new(),
            by_eviction: BTreeSet::new(),
            evicted_early: 0,
            bytes: 0,
            lapsed: LapsedTokens::default(),
            evicted: Vec::new(),
        }
    }

    /// Applies a token event. Issued, refreshed and introspected tokens with an id and a granted
    /// scope string are remembered; revoked ones are marked (and returned, the first time) but
    /// kept until they would have expired, so later use of them is seen; denials change nothing.
    pub fn apply(&mut self, event: &TokenEvent) -> Option<TokenInfo> {
        self.apply_with_lifetime(event, None)
    }

    /// As [`TokenCache::apply`], with the lifetime registered for the token's client (used
    /// when the event logs none; it wins over `configured_ttl_seconds`).
    pub fn apply_with_lifetime(
        &mut self,
        event: &TokenEvent,
        client_ttl_seconds: Option<i64>,
    ) -> Option<TokenInfo> {
        let token_id = event.token_id.as_ref()?;
        match event.event {
            TokenAction::Revoked => {
                if !self.by_id.contains_key(token_id.as_str()) {
                    self.remember_unseen(event, client_ttl_seconds);
                }
                return self.revoke(token_id, event.common.time);
            }
            TokenAction::Denied => {}
            TokenAction::Issued | TokenAction::Refreshed | TokenAction::Introspected => {
                let granted = event.granted_scope()?;
                // Introspection of a token we already know adds nothing; nor does that of one
                // that lapsed (an introspection is not a new grant: the token stays expired).
                if event.event == TokenAction::Introspected
                    && (self.by_id.contains_key(token_id)
                        || self
                            .lapsed
                            .expiry_of(token_id, &event.common.client_id)
                            .is_some())
                {
                    return None;
                }
                let issued_at = event.common.time;
                let known = event
                    .expires_in
                    .filter(|s| *s > 0)
                    .or(client_ttl_seconds)
                    .or(self.config.configured_ttl_seconds);
                let ttl = known.unwrap_or(self.config.default_ttl_seconds);
                let info = TokenInfo {
                    token_id: token_id.clone(),
                    client_id: event.common.client_id.clone(),
                    grant_type: event.grant_type.clone(),
                    scopes: self.parse_scopes(granted),
                    patient: event.patient.clone(),
                    user: event.common.user.clone(),
                    issued_at,
                    revoked_at: None,
                    first_patient: None,
                    lifetime_assumed: known.is_none(),
                    expires_at: Timestamp(
                        issued_at
                            .0
                            .saturating_add(ttl.saturating_mul(MICROS_PER_SECOND)),
                    ),
                };
                self.insert(info);
            }
        }
        None
    }

    /// A revocation of a token the log never issued (issued before the log began, or by a
    /// source that logs only revocations): kept, without scopes, for the lifetime a token of
    /// its app would have from now, so a server that still honours it is seen as
    /// `revoked_token_use` (RFC 7009 §2), not as an unknown token.
    fn remember_unseen(&mut self, event: &TokenEvent, client_ttl_seconds: Option<i64>) {
        let Some(token_id) = event.token_id.clone() else {
            return;
        };
        let at = event.common.time;
        let ttl = client_ttl_seconds
            .or(self.config.configured_ttl_seconds)
            .unwrap_or(self.config.default_ttl_seconds);
        let info = TokenInfo {
            token_id,
            client_id: event.common.client_id.clone(),
            grant_type: None,
            scopes: self.parse_scopes(""),
            patient: None,
            user: event.common.user.clone(),
            issued_at: at,
            revoked_at: None,
            first_patient: None,
            lifetime_assumed: true,
            expires_at: Timestamp(at.0.saturating_add(ttl.saturating_mul(MICROS_PER_SECOND))),
        };
        self.insert(info);
    }

    /// Remembers the first patient an unrecorded patient launch named.
    pub fn set_first_patient(&mut self, token_id: &str, patient: Text) {
        if let Some(info) = self.by_id.get_mut(token_id) {
            if info.first_patient.is_none() {
                self.bytes += patient.len();
                info.first_patient = Some(patient);
            }
        }
    }

    /// Marks a token revoked; it no longer stands for its client's accesses without a token id.
    fn revoke(&mut self, token_id: &str, at: Timestamp) -> Option<TokenInfo> {
        let info = self.by_id.get_mut(token_id)?;
        if info.revoked_at.is_some() {
            return None;
        }
        info.revoked_at = Some(at);
        let info = info.clone();
        self.forget_client_token(&info);
        Some(info)
    }

    fn parse_scopes(&mut self, granted: &str) -> Arc<ScopeSet> {
        self.parsed.parse(granted)
    }

    fn eviction_time(&self, info: &TokenInfo) -> Timestamp {
        Timestamp(
            info.expires_at
                .0
                .saturating_add(self.config.grace_seconds * MICROS_PER_SECOND),
        )
    }

    fn insert(&mut self, mut info: TokenInfo) {
        // A revoked token id stays revoked, whatever is logged for it later.
        if let Some(old) = self.remove(&info.token_id) {
            info.revoked_at = info.revoked_at.or(old.revoked_at);
        }
        if !self.lapsed.is_empty() {
            self.lapsed.forget(&info.token_id);
        }
        let bytes = token_bytes(&info);
        while self.bytes + self.lapsed.bytes() + bytes > self.config.max_bytes
            && self.lapsed.pop_oldest()
        {}
        while self.by_id.len() >= self.config.capacity.max(1)
            || (!self.by_id.is_empty() && self.bytes + bytes > self.config.max_bytes)
        {
            let Some(first) = self.by_eviction.pop_first() else {
                break;
            };
            if let Some(old) = self.take(&first.1) {
                self.forget_client_token(&old);
                self.evicted.push(old);
            }
            self.evicted_early += 1;
        }
        self.place(info, bytes);
    }

    /// Tokens evicted early since the last call.
    pub fn take_evicted(&mut self) -> Vec<TokenInfo> {
        std::mem::take(&mut self.evicted)
    }

    /// Adds a token to the indexes (room having been made).
    fn place(&mut self, info: TokenInfo, bytes: usize) {
        self.bytes += bytes;
        self.by_eviction
            .insert((self.eviction_time(&info), info.token_id.clone()));
        if info.revoked_at.is_none() {
            self.by_client
                .entry(info.client_id.clone())
                .or_default()
                .insert(info.token_id.clone());
        }
        self.by_id.insert(info.token_id.clone(), info);
    }

    /// Removes a token from `by_id` and its bytes from the count (the other indexes are the
    /// caller's).
    fn take(&mut self, token_id: &str) -> Option<TokenInfo> {
        let old = self.by_id.remove(token_id)?;
        self.bytes = self.bytes.saturating_sub(token_bytes(&old));
        Some(old)
    }

    /// Estimated bytes of the held tokens (`token_bytes`).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn remove(&mut self, token_id: &str) -> Option<TokenInfo> {
        let old = self.take(token_id)?;
        let key = (self.eviction_time(&old), old.token_id.clone());
        self.by_eviction.remove(&key);
        self.forget_client_token(&old);
        Some(old)
    }

    fn forget_client_token(&mut self, old: &TokenInfo) {
        if let Some(ids) = self.by_client.get_mut(&old.client_id) {
            ids.remove(&old.token_id);
            if ids.is_empty() {
                self.by_client.remove(&old.client_id);
            }
        }
    }

    /// The client's token for an access logged without a token id (FHIR AuditEvents without
    /// BALP's OAuth agent, gateways that log no claim): only when the client holds exactly one
    /// cached token and it is unexpired at `now` — with two or more, which one was used is
    /// unknown, and guessing could blame the wrong grant.
    pub fn sole_live_token(&self, client_id: &str, now: Timestamp) -> Option<&TokenInfo> {
        let ids = self.by_client.get(client_id)?;
        if ids.len() != 1 {
            return None;
        }
        let token = self.by_id.get(ids.first()?)?;
        (!token.is_expired_at(now)).then_some(token)
    }

    /// Forgets tokens whose expiry plus grace is before `now`, and returns them.
    pub fn expire(&mut self, now: Timestamp) -> Vec<TokenInfo> {
        let mut gone = Vec::new();
        while let Some((at, _)) = self.by_eviction.first() {
            if *at >= now {
                break;
            }
            if let Some((_, id)) = self.by_eviction.pop_first() {
                if let Some(old) = self.take(&id) {
                    self.forget_client_token(&old);
                    self.remember_lapsed(&old);
                    gone.push(old);
                }
            }
        }
        self.lapsed.forget_before(now, self.config.lapsed_seconds);
        gone
    }

    fn remember_lapsed(&mut self, old: &TokenInfo) {
        if old.lifetime_assumed {
            return; // nothing says it ever expired
        }
        self.lapsed
            .record(&old.token_id, &old.client_id, old.expires_at);
        while self.lapsed.len() > self.config.capacity.max(1)
            || self.bytes + self.lapsed.bytes() > self.config.max_bytes
        {
            if !self.lapsed.pop_oldest() {
                break;
            }
        }
    }

    /// Estimated bytes of the records of lapsed tokens (`lapsed::LAPSED_BYTES` each).
    pub fn lapsed_bytes(&self) -> usize {
        self.lapsed.bytes()
    }

    /// When a token of this client that expired and left the cache had expired (remembered
    /// for `lapsed_seconds`).
    pub fn lapsed_expiry(&self, token_id: &str, client_id: &str) -> Option<Timestamp> {
        self.lapsed.expiry_of(token_id, client_id)
    }

    /// Every token still held (end of input).
    pub fn drain(&mut self) -> Vec<TokenInfo> {
        self.by_eviction.clear();
        self.by_client.clear();
        self.lapsed = LapsedTokens::default();
        self.bytes = 0;
        std::mem::take(&mut self.by_id).into_values().collect()
    }

    /// The cached tokens (sorted by id, so a snapshot is the same bytes for the same state).
    pub fn to_state(&self) -> TokenCacheState {
        let mut tokens: Vec<TokenState> = self.by_id.values().map(TokenState::from).collect();
        tokens.sort_by(|a, b| a.token_id.cmp(&b.token_id));
        TokenCacheState {
            tokens,
            evicted_early: self.evicted_early,
            lapsed: self.lapsed.to_state(),
        }
    }

    /// A cache holding exactly the tokens of a snapshot: none evicted here, even when they are
    /// over the bounds (a first patient noted after insertion can carry them over), so the next
    /// insert trims exactly as the uninterrupted run's would.
    pub fn from_state(config: TokenCacheConfig, state: TokenCacheState) -> TokenCache {
        let mut cache = TokenCache::new(config);
        for token in state.tokens {
            let info: TokenInfo = token.into();
            let bytes = token_bytes(&info);
            cache.place(info, bytes);
        }
        cache.evicted_early = state.evicted_early;
        cache.lapsed = LapsedTokens::from_state(state.lapsed);
        cache
    }

    pub fn get(&self, token_id: &str) -> Option<&TokenInfo> {
        self.by_id.get(token_id)
    }
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{parse_event_str, Event};

    fn token(line: &str) -> TokenEvent {
        match parse_event_str(line).unwrap() {
            Event::Token(t) => t,
            Event::Access(_) => panic!("not a token"),
        }
    }

    fn issued(id: &str, at: &str, expires_in: i64) -> TokenEvent {
        token(&format!(
            r#"{{"type":"token","event":"issued","time":"{at}","client_id":"app","token_id":"{id}","scope_granted":"patient/Observation.read launch/patient","patient":"p1","expires_in":{expires_in}}}"#
        ))
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn remembers_granted_scopes_and_launch_patient() {
        let mut c = TokenCache::new(TokenCacheConfig::default());
        c.apply(&issued("t1", "2024-03-01T12:00:00Z", 300));
        let t = c.get("t1").unwrap();
        assert_eq!(
            t.scopes.normalized_string(),
            "patient/Observation.rs launch/patient"
        );
        assert_eq!(t.patient.as_deref(), Some("p1"));
        assert_eq!(t.expires_at, ts("2024-03-01T12:05:00Z"));
        assert!(t.is_expired_at(ts("2024-03-01T12:05:01Z")));
    }

    #[test]
    fn expiry_grace_and_revocation() {
        let mut c = TokenCache::new(TokenCacheConfig {
            grace_seconds: 60,
            ..TokenCacheConfig::default()
        });
        c.apply(&issued("t1", "2024-03-01T12:00:00Z", 300));
        c.apply(&issued("t2", "2024-03-01T12:00:00Z", 3600));
        c.expire(ts("2024-03-01T12:05:30Z"));
        assert!(c.get("t1").is_some(), "inside the grace period");
        let at = ts("2024-03-01T12:06:30Z");
        assert!(c.sole_live_token("app", at).is_none(), "two tokens held");
        c.expire(ts("2024-03-01T12:06:01Z"));
        assert!(c.get("t1").is_none());
        assert_eq!(
            c.sole_live_token("app", at).map(|t| t.token_id.as_str()),
            Some("t2"),
            "expiry leaves the client index in step"
        );
        let revoked = c.apply(&token(r#"{"type":"token","event":"revoked","time":"2024-03-01T12:07:00Z","client_id":"app","token_id":"t2"}"#));
        assert_eq!(revoked.map(|t| t.token_id), Some("t2".into()));
        // Kept, marked revoked, so a server still honouring it is seen (RFC 7009 §2).
        let t2 = c.get("t2").expect("revoked tokens are kept until expiry");
        assert!(t2.is_revoked_at(ts("2024-03-01T12:07:01Z")));
        assert!(!t2.is_revoked_at(ts("2024-03-01T12:06:59Z")));
        assert!(c.sole_live_token("app", at).is_none(), "revocation too");
        let again = c.apply(&token(r#"{"type":"token","event":"revoked","time":"2024-03-01T12:08:00Z","client_id":"app","token_id":"t2"}"#));
        assert!(again.is_none(), "a second revocation changes nothing");
        let state = c.to_state();
        let back = TokenCache::from_state(TokenCacheConfig::default(), state);
        assert!(back.get("t2").is_some_and(|t| t.revoked_at.is_some()));
        assert!(back.sole_live_token("app", at).is_none());
    }

    #[test]
    fn capacity_evicts_the_soonest_to_expire() {
        let mut c = TokenCache::new(TokenCacheConfig {
            capacity: 2,
            ..TokenCacheConfig::default()
        });
        c.apply(&issued("long", "2024-03-01T12:00:00Z", 3600));
        c.apply(&issued("short", "2024-03-01T12:00:00Z", 60));
        c.apply(&issued("new", "2024-03-01T12:01:00Z", 600));
        assert!(c.get("short").is_none());
        assert!(c.get("long").is_some() && c.get("new").is_some());
        assert_eq!(c.evicted_early, 1);
        assert_eq!(
            c.by_client["app"].len(),
            2,
            "eviction leaves the client index in step"
        );
    }

    /// Issue #16 (one byte budget): tokens beyond `max_bytes` push out the soonest to expire,
    /// however few they are; the count follows inserts, expiry, a snapshot and the end.
    #[test]
    fn the_byte_budget_evicts_the_soonest_to_expire() {
        let mut probe = TokenCache::new(TokenCacheConfig::default());
        probe.apply(&issued("long", "2024-03-01T12:00:00Z", 3600));
        let one = probe.bytes();
        assert!(one > 0);
        let mut c = TokenCache::new(TokenCacheConfig {
            max_bytes: 2 * one + one / 2,
            ..TokenCacheConfig::default()
        });
        c.apply(&issued("long", "2024-03-01T12:00:00Z", 3600));
        c.apply(&issued("shrt", "2024-03-01T12:00:00Z", 60));
        assert_eq!((c.len(), c.bytes()), (2, 2 * one));
        c.apply(&issued("newt", "2024-03-01T12:01:00Z", 600));
        assert!(c.get("shrt").is_none());
        assert!(c.get("long").is_some() && c.get("newt").is_some());
        assert_eq!((c.evicted_early, c.bytes()), (1, 2 * one));
        let back = TokenCache::from_state(c.config.clone(), c.to_state());
        assert_eq!(back.bytes(), c.bytes());
        // A restore keeps every token even under a smaller budget; the next insert trims, and
        // the evicted tokens are handed to the engine to end.
        let mut small = TokenCache::from_state(
            TokenCacheConfig {
                max_bytes: one,
                ..TokenCacheConfig::default()
            },
            c.to_state(),
        );
        assert_eq!((small.len(), small.evicted_early), (2, 1));
        small.apply(&issued("last", "2024-03-01T12:02:00Z", 600));
        assert_eq!(small.len(), 1);
        let ended: Vec<String> = small
            .take_evicted()
            .iter()
            .map(|t| t.token_id.to_string())
            .collect();
        assert_eq!(ended, ["newt", "long"]);
        assert!(small.take_evicted().is_empty());
        c.expire(Timestamp::parse_rfc3339("2024-03-01T12:30:00Z").unwrap());
        assert_eq!((c.len(), c.bytes()), (1, one));
        c.drain();
        assert_eq!(c.bytes(), 0);
    }

    /// Tokens that expired with a known lifetime are remembered after they leave: not those
    /// whose lifetime was assumed, not after an introspection (not a new grant), not once
    /// reissued; a snapshot keeps them; under byte pressure they go before any live token.
    #[test]
    fn expired_tokens_are_remembered_as_lapsed() {
        let mut c = TokenCache::new(TokenCacheConfig::default());
        c.apply(&issued("t1", "2024-03-01T12:00:00Z", 300));
        c.apply(&token(r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"kc","scope_granted":"patient/Observation.rs"}"#));
        c.expire(ts("2024-03-01T13:10:01Z"));
        assert!(c.get("t1").is_none() && c.get("kc").is_none());
        assert_eq!(
            c.lapsed_expiry("t1", "app"),
            Some(ts("2024-03-01T12:05:00Z"))
        );
        assert_eq!(c.lapsed_expiry("kc", "app"), None, "lifetime assumed");
        c.apply(&token(r#"{"type":"token","event":"introspected","time":"2024-03-01T13:20:00Z","client_id":"app","token_id":"t1","scope_granted":"patient/Observation.rs"}"#));
        assert!(c.get("t1").is_none(), "an introspection does not revive it");
        let back = TokenCache::from_state(TokenCacheConfig::default(), c.to_state());
        assert_eq!(
            back.lapsed_expiry("t1", "app"),
            Some(ts("2024-03-01T12:05:00Z"))
        );
        assert_eq!(back.lapsed_bytes(), c.lapsed_bytes());
        c.apply(&issued("t1", "2024-03-01T13:30:00Z", 300));
        assert_eq!(c.lapsed_expiry("t1", "app"), None, "reissued: live again");
        // A budget with room for one live token: the lapsed record goes, the live one stays.
        let mut probe = TokenCache::new(TokenCacheConfig::default());
        probe.apply(&issued("t2", "2024-03-01T12:00:00Z", 300));
        let one = probe.bytes();
        let mut tight = TokenCache::new(TokenCacheConfig {
            max_bytes: 2 * one,
            ..TokenCacheConfig::default()
        });
        tight.apply(&issued("t2", "2024-03-01T12:00:00Z", 300));
        tight.expire(ts("2024-03-01T12:20:00Z"));
        assert_eq!(
            tight.lapsed_expiry("t2", "app"),
            Some(ts("2024-03-01T12:05:00Z"))
        );
        tight.apply(&issued("t3", "2024-03-01T12:30:00Z", 300));
        tight.apply(&issued("t4", "2024-03-01T12:30:00Z", 300));
        assert_eq!(tight.lapsed_expiry("t2", "app"), None);
        assert_eq!((tight.len(), tight.evicted_early), (2, 0));
    }

    #[test]
    fn denials_and_tokens_without_scopes_are_not_cached() {
        let mut c = TokenCache::new(TokenCacheConfig::default());
        c.apply(&token(r#"{"type":"token","event":"denied","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"d","scope_granted":"system/*.rs"}"#));
        c.apply(&token(r#"{"type":"token","event":"issued","time":"2024-03-01T12:00:00Z","client_id":"app","token_id":"n"}"#));
        assert!(c.is_empty());
    }
}
