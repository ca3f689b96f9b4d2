//! Query-string splitting with lazy percent-decoding.

use std::borrow::Cow;

/// Iterates `name=value` pairs of a query string, decoding `%XX` and `+` only when present.
pub fn pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    split_ascii(query, b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = split_once_ascii(pair, b'=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
}

/// `s` split at the first `byte`, as `str::split_once` would (found with memchr; `byte` must
/// be ASCII).
pub(crate) fn split_once_ascii(s: &str, byte: u8) -> Option<(&str, &str)> {
    debug_assert!(byte.is_ascii());
    memchr::memchr(byte, s.as_bytes()).map(|i| (&s[..i], &s[i + 1..]))
}

/// `s` split at every `byte`, as `str::split` would; found with memchr, which costs less per
/// call than the char searcher on the short strings of a URL. `byte` must be ASCII, so every
/// cut falls on a character boundary.
pub(crate) fn split_ascii(s: &str, byte: u8) -> impl Iterator<Item = &str> {
    debug_assert!(byte.is_ascii());
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(byte, current.as_bytes()) {
            Some(i) => {
                rest = Some(&current[i + 1..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Percent-decodes a query component. Malformed escapes are kept as written; bytes that do
/// not form UTF-8 are replaced, since the result is only used for classification.
pub fn decode(s: &str) -> Cow<'_, str> {
    // Most components need no decoding; memchr scans for the two bytes a vector at a time.
    if memchr::memchr2(b'%', b'+', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_str_split_does() {
        for s in ["", "&", "a", "a&b", "a&&b", "&a&", "é&ü=1&", "x=1&y=%26&z"] {
            let ours: Vec<&str> = split_ascii(s, b'&').collect();
            let std: Vec<&str> = s.split('&').collect();
            assert_eq!(ours, std, "{s:?}");
            assert_eq!(split_once_ascii(s, b'&'), s.split_once('&'), "{s:?}");
        }
    }

    #[test]
    fn decodes_only_when_needed() {
        assert!(matches!(decode("abc"), Cow::Borrowed("abc")));
        assert_eq!(decode("Patient%2F123"), "Patient/123");
        assert_eq!(decode("a+b"), "a b");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        let p: Vec<_> = pairs("a=1&&b&c=x%7Cy").collect();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].0, "b");
        assert_eq!(p[1].1, "");
        assert_eq!(p[2].1, "x|y");
    }
}
