//! Query-string splitting with lazy percent-decoding.

use std::borrow::Cow;

/// Iterates `name=value` pairs of a query string, decoding `%XX` and `+` only when present.
pub fn pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(name), decode(value))
    })
}

/// Percent-decodes a query component. Malformed escapes are kept as written; bytes that do
/// not form UTF-8 are replaced, since the result is only used for classification.
pub fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
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
