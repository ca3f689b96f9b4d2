//! Tokens that expired and left the token cache, remembered as small records (a hash of the
//! token id, a hash of its client, its expiry) for a day by default. The cache keeps a full
//! token only for its lifetime plus a short grace period; without these records, a server
//! that honours a token an hour after it expired would show only an unknown token, and
//! `expired_token_use` would never see it (RFC 6749 §1.4: tokens represent durations of
//! access, enforced by the resource server).
//!
//! No PHI and no token id is kept: the id is matched by its hash (FNV-1a, 64 bits: fixed, so a
//! snapshot restores the same records on any build).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::event::{Timestamp, MICROS_PER_SECOND};

/// Estimated bytes of one record: its map entry (with the map's spare capacity) and its place
/// in the time order.
pub const LAPSED_BYTES: usize = 96;

/// One token remembered after it left the cache, in a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapsedToken {
    pub id_hash: u64,
    pub client_hash: u64,
    pub expires_at: Timestamp,
}

/// The remembered records, oldest expiry first.
#[derive(Debug, Default)]
pub struct LapsedTokens {
    by_id: HashMap<u64, LapsedToken>,
    /// The same records in the order they lapsed (tokens leave the cache in expiry order).
    order: VecDeque<LapsedToken>,
}

/// FNV-1a over the bytes: a fixed hash, so records mean the same after a restore.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl LapsedTokens {
    /// Remembers a token that left the cache with a known lifetime.
    pub fn record(&mut self, token_id: &str, client_id: &str, expires_at: Timestamp) {
        let record = LapsedToken {
            id_hash: fnv1a(token_id),
            client_hash: fnv1a(client_id),
            expires_at,
        };
        self.forget_hash(record.id_hash);
        self.by_id.insert(record.id_hash, record);
        self.order.push_back(record);
    }

    /// The expiry of a lapsed token of this client, if it is remembered.
    pub fn expiry_of(&self, token_id: &str, client_id: &str) -> Option<Timestamp> {
        let record = self.by_id.get(&fnv1a(token_id))?;
        (record.client_hash == fnv1a(client_id)).then_some(record.expires_at)
    }

    /// Forgets a token id issued again (it is live once more).
    pub fn forget(&mut self, token_id: &str) {
        self.forget_hash(fnv1a(token_id));
    }

    /// Rare (a token id seen again after it lapsed), so the scan of the order is affordable.
    fn forget_hash(&mut self, id_hash: u64) {
        if self.by_id.remove(&id_hash).is_some() {
            self.order.retain(|r| r.id_hash != id_hash);
        }
    }

    /// Forgets the records that expired more than `keep_seconds` before `now`.
    pub fn forget_before(&mut self, now: Timestamp, keep_seconds: i64) {
        let horizon = now
            .0
            .saturating_sub(keep_seconds.saturating_mul(MICROS_PER_SECOND));
        while self.order.front().is_some_and(|r| r.expires_at.0 < horizon) {
            self.pop_oldest();
        }
    }

    /// Forgets the oldest record; false when none is left.
    pub fn pop_oldest(&mut self) -> bool {
        let Some(record) = self.order.pop_front() else {
            return false;
        };
        self.by_id.remove(&record.id_hash);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Estimated bytes held (`LAPSED_BYTES` a record).
    pub fn bytes(&self) -> usize {
        self.order.len() * LAPSED_BYTES
    }

    /// The records, oldest first (a snapshot).
    pub fn to_state(&self) -> Vec<LapsedToken> {
        self.order.iter().copied().collect()
    }

    /// The records of a snapshot; an id repeated in a damaged state file keeps its first
    /// record, so the map and the order stay in step.
    pub fn from_state(records: Vec<LapsedToken>) -> LapsedTokens {
        let mut lapsed = LapsedTokens::default();
        for record in records {
            if lapsed.by_id.contains_key(&record.id_hash) {
                continue;
            }
            lapsed.by_id.insert(record.id_hash, record);
            lapsed.order.push_back(record);
        }
        lapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapsed_token_is_known_by_id_and_client_until_forgotten() {
        let mut lapsed = LapsedTokens::default();
        lapsed.record("t1", "app", Timestamp(100 * MICROS_PER_SECOND));
        lapsed.record("t2", "app", Timestamp(200 * MICROS_PER_SECOND));
        assert_eq!(
            lapsed.expiry_of("t1", "app"),
            Some(Timestamp(100 * MICROS_PER_SECOND))
        );
        assert_eq!(
            lapsed.expiry_of("t1", "other-app"),
            None,
            "another client's id"
        );
        assert_eq!(lapsed.expiry_of("t3", "app"), None);
        lapsed.forget_before(Timestamp(250 * MICROS_PER_SECOND), 100);
        assert_eq!(
            lapsed.expiry_of("t1", "app"),
            None,
            "kept 100 s past expiry"
        );
        assert!(lapsed.expiry_of("t2", "app").is_some());
        assert_eq!(lapsed.bytes(), LAPSED_BYTES);
    }

    #[test]
    fn a_token_issued_again_is_no_longer_lapsed_and_a_snapshot_restores_the_rest() {
        let mut lapsed = LapsedTokens::default();
        lapsed.record("t1", "app", Timestamp(100));
        lapsed.record("t2", "app", Timestamp(200));
        lapsed.forget("t1");
        assert_eq!(lapsed.expiry_of("t1", "app"), None);
        let back = LapsedTokens::from_state(lapsed.to_state());
        assert_eq!(back.to_state(), lapsed.to_state());
        assert_eq!((back.len(), lapsed.len()), (1, 1));
        assert_eq!(back.expiry_of("t2", "app"), Some(Timestamp(200)));
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325, "FNV-1a offset basis");
        let repeated = LapsedToken {
            id_hash: 7,
            client_hash: 1,
            expires_at: Timestamp(1),
        };
        let back = LapsedTokens::from_state(vec![repeated, repeated]);
        assert_eq!((back.len(), back.by_id.len()), (1, 1));
    }
}
