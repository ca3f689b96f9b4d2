//! The SMART v2 permission letters `c r u d s` as a bit set.

use std::fmt;

/// A set of SMART v2 permission letters. v1 suffixes map onto it
/// (`read` = `rs`, `write` = `cud`, `*` = `cruds`), so both spellings compare equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Perms(u8);

const LETTERS: [(char, u8); 5] = [('c', 1), ('r', 2), ('u', 4), ('d', 8), ('s', 16)];

impl Perms {
    pub const NONE: Perms = Perms(0);
    pub const CREATE: Perms = Perms(1);
    pub const READ: Perms = Perms(2);
    pub const UPDATE: Perms = Perms(4);
    pub const DELETE: Perms = Perms(8);
    pub const SEARCH: Perms = Perms(16);
    /// v1 `read`: read and search.
    pub const V1_READ: Perms = Perms(2 | 16);
    /// v1 `write`: create, update, delete (write does not imply read).
    pub const V1_WRITE: Perms = Perms(1 | 4 | 8);
    /// v1 `*` / v2 `cruds`.
    pub const ALL: Perms = Perms(31);

    /// Parses v2 letters, which must be a non-empty subset of `cruds` in that order.
    pub fn from_v2_letters(letters: &str) -> Result<Perms, String> {
        if letters.is_empty() {
            return Err("empty permission".to_string());
        }
        let mut bits = 0u8;
        let mut last_index: Option<usize> = None;
        let mut out_of_order = false;
        for ch in letters.chars() {
            let Some(index) = LETTERS.iter().position(|(l, _)| *l == ch) else {
                return Err(format!(
                    "unknown permission '{letters}' (v1: read, write, *; v2: letters from cruds)"
                ));
            };
            if last_index.is_some_and(|last| index <= last) {
                out_of_order = true;
            }
            last_index = Some(index);
            bits |= LETTERS[index].1;
        }
        if out_of_order {
            return Err(format!(
                "permission letters '{letters}' are not in c,r,u,d,s order (servers may ignore or reinterpret them)"
            ));
        }
        Ok(Perms(bits))
    }

    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }
    pub fn minus(self, other: Perms) -> Perms {
        Perms(self.0 & !other.0)
    }
    pub fn intersection(self, other: Perms) -> Perms {
        Perms(self.0 & other.0)
    }
    pub fn intersects(self, other: Perms) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True when any of create, update or delete is present.
    pub fn has_write(self) -> bool {
        self.intersects(Perms::V1_WRITE)
    }

    /// The letters in canonical `cruds` order, e.g. `rs`.
    pub fn letters(self) -> String {
        LETTERS
            .iter()
            .filter(|(_, bit)| self.0 & bit != 0)
            .map(|(l, _)| *l)
            .collect()
    }
}

impl fmt::Debug for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Perms({})", self.letters())
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.letters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_letters_must_be_ordered_subset() {
        assert_eq!(Perms::from_v2_letters("rs").unwrap(), Perms::V1_READ);
        assert_eq!(Perms::from_v2_letters("cud").unwrap(), Perms::V1_WRITE);
        assert_eq!(Perms::from_v2_letters("cruds").unwrap(), Perms::ALL);
        assert!(Perms::from_v2_letters("dus")
            .unwrap_err()
            .contains("not in c,r,u,d,s order"));
        assert!(Perms::from_v2_letters("rr").is_err());
        assert!(Perms::from_v2_letters("rsx")
            .unwrap_err()
            .contains("unknown permission"));
        assert!(Perms::from_v2_letters("").is_err());
    }

    #[test]
    fn set_operations() {
        let rs = Perms::V1_READ;
        assert!(Perms::ALL.contains(rs));
        assert!(!rs.contains(Perms::CREATE));
        assert_eq!(Perms::ALL.minus(rs).letters(), "cud");
        assert!(Perms::V1_WRITE.has_write());
        assert!(!rs.has_write());
    }
}
