//! The accounts (the tokens' `user`) an app served at a normally silent time, so `off_hours`
//! can tell one account's night habit from an on-call rota: a busy clinical app is used at
//! night by a different clinician most nights, while one account back at 3 am two nights
//! running is the pattern worth a look. Bounded: an hour keeps at most [`MAX_ACCOUNTS`], and
//! an app remembers at most that many night-time accounts (account ids are workforce or
//! patient identities: they stay in the state, never in alerts).

use serde::{Deserialize, Serialize};

use crate::event::{Text, Timestamp, MICROS_PER_SECOND};

const MICROS_PER_HOUR: i64 = 3600 * MICROS_PER_SECOND;

/// Most accounts kept for one hour, and per app across its recent nights.
pub const MAX_ACCOUNTS: usize = 16;

/// Stands for a night whose accounts are unknown (tokens naming none, or too many): it may
/// have been anyone's, so it counts as every account's earlier night. Not a valid `user`
/// (FHIR references have no spaces).
pub static UNKNOWN: Text = Text::const_new("(unknown accounts)");

/// The accounts whose tokens were served in one hour of an app.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HourAccounts {
    ids: Vec<Text>,
    /// More than [`MAX_ACCOUNTS`]: too many to say whose hour it was.
    #[serde(default)]
    many: bool,
}

impl HourAccounts {
    pub fn add(&mut self, id: &Text) {
        if self.many || self.ids.contains(id) {
            return;
        }
        if self.ids.len() == MAX_ACCOUNTS {
            self.many = true;
            self.ids.clear();
            return;
        }
        self.ids.push(id.clone());
    }

    /// The hour's accounts, when its tokens named some and not too many.
    pub fn known(&self) -> Option<&[Text]> {
        (!self.many && !self.ids.is_empty()).then_some(self.ids.as_slice())
    }

    /// The accounts to remember for a night: the hour's, or [`UNKNOWN`] when it cannot say.
    pub fn remembered(&self) -> &[Text] {
        match self.known() {
            Some(ids) => ids,
            None => std::slice::from_ref(&UNKNOWN),
        }
    }
}

/// The accounts an app served at a silent time, each with the first hour of the night it was
/// last seen in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NightAccounts(Vec<(Text, Timestamp)>);

impl NightAccounts {
    /// A night (its first hour) in which one of `accounts`, or accounts unknown, were seen at
    /// a silent time, if that night began `min_gap_hours` to `window_hours` before `at`; with
    /// whether it was one of `accounts` (not only a night whose accounts are unknown) that was
    /// seen then. The latest night an account itself was seen wins over a later night of
    /// unknown accounts.
    pub fn earlier_night(
        &self,
        accounts: &[Text],
        at: Timestamp,
        (min_gap_hours, window_hours): (f64, f64),
    ) -> Option<(Timestamp, bool)> {
        self.0
            .iter()
            .filter_map(|(id, night)| {
                let named = accounts.contains(id);
                (named || *id == UNKNOWN).then_some((*night, named))
            })
            .filter(|(night, _)| {
                let gap = hours_between(*night, at);
                gap >= min_gap_hours && gap <= window_hours
            })
            .max_by_key(|(night, named)| (*named, *night))
    }

    /// Remembers `accounts` as seen in the night that began at `night`, forgetting accounts
    /// last seen more than `window_hours` before it, and the oldest beyond [`MAX_ACCOUNTS`].
    pub fn remember(&mut self, accounts: &[Text], night: Timestamp, window_hours: f64) {
        self.0
            .retain(|(_, seen)| hours_between(*seen, night) <= window_hours);
        for id in accounts {
            match self.0.iter_mut().find(|(known, _)| known == id) {
                Some(entry) => entry.1 = night,
                None => self.0.push((id.clone(), night)),
            }
        }
        if self.0.len() > MAX_ACCOUNTS {
            self.0.sort_by_key(|(_, seen)| std::cmp::Reverse(*seen));
            self.0.truncate(MAX_ACCOUNTS);
        }
    }
}

/// Hours from `earlier` to `later` (what `off_hours` measures nights by).
pub(crate) fn hours_between(earlier: Timestamp, later: Timestamp) -> f64 {
    (later.0 - earlier.0) as f64 / MICROS_PER_HOUR as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(h: i64) -> Timestamp {
        Timestamp(h * MICROS_PER_HOUR)
    }

    #[test]
    fn an_hour_names_its_accounts_until_there_are_too_many() {
        let mut hour = HourAccounts::default();
        assert_eq!(hour.known(), None, "no account named");
        hour.add(&"Practitioner/a".into());
        hour.add(&"Practitioner/a".into());
        assert_eq!(hour.known().map(<[Text]>::len), Some(1));
        for i in 0..MAX_ACCOUNTS {
            hour.add(&format!("Practitioner/{i}").into());
        }
        assert_eq!(hour.known(), None, "too many to say whose hour it was");
    }

    #[test]
    fn an_account_is_back_only_on_another_night_within_the_window() {
        let mut nights = NightAccounts::default();
        let a: Text = "Practitioner/a".into();
        let b: Text = "Practitioner/b".into();
        nights.remember(std::slice::from_ref(&a), hour(2), 72.0);
        let window = (12.0, 72.0);
        // The same night (one hour later) is not another night.
        assert_eq!(
            nights.earlier_night(std::slice::from_ref(&a), hour(3), window),
            None
        );
        // The next night it is; another account is not.
        assert_eq!(
            nights.earlier_night(std::slice::from_ref(&a), hour(26), window),
            Some((hour(2), true))
        );
        assert_eq!(
            nights.earlier_night(std::slice::from_ref(&b), hour(26), window),
            None
        );
        // Four days later the first night is out of the window, and is forgotten once a
        // later night is remembered.
        assert_eq!(
            nights.earlier_night(std::slice::from_ref(&a), hour(98), window),
            None
        );
        nights.remember(&[b], hour(98), 72.0);
        assert_eq!(nights.0.len(), 1);
    }

    #[test]
    fn a_night_of_unknown_accounts_counts_as_anyones() {
        // A night whose tokens named no account (or too many) cannot clear any account: the
        // next night recurs whoever it is, as the rule without accounts would have it.
        let mut nights = NightAccounts::default();
        nights.remember(HourAccounts::default().remembered(), hour(2), 72.0);
        let a: Text = "Practitioner/a".into();
        assert_eq!(
            nights.earlier_night(std::slice::from_ref(&a), hour(26), (12.0, 72.0)),
            Some((hour(2), false)),
            "recurs, but not as the same account"
        );
        // Once the account itself is seen on a night, that night says so, even when a later
        // night of unknown accounts is in the window too.
        nights.remember(std::slice::from_ref(&a), hour(26), 72.0);
        nights.remember(HourAccounts::default().remembered(), hour(38), 72.0);
        assert_eq!(
            nights.earlier_night(std::slice::from_ref(&a), hour(50), (12.0, 72.0)),
            Some((hour(26), true))
        );
    }
}
