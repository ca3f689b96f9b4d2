//! Where the history store lives: a local directory, or (`--data s3://bucket/prefix`) a
//! prefix of an S3-compatible bucket.

use std::fmt;
use std::path::PathBuf;

/// The value of `--data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataLocation {
    Local(PathBuf),
    /// An object-store prefix, written through a local staging directory and read in place
    /// (`remote.rs`).
    ObjectStore(StoreUrl),
}

/// `s3://bucket/prefix`, normalised: no trailing slash, no empty segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreUrl {
    pub bucket: String,
    /// Key prefix of the store's objects, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl StoreUrl {
    /// The URL of the bucket (what an object store is registered under).
    pub fn bucket_url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    /// The key of `relative` (a `/`-separated path inside the store).
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    /// The URL of `relative` inside the store, as DataFusion reads it.
    pub fn url_of(&self, relative: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(relative))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl fmt::Display for DataLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataLocation::Local(path) => write!(f, "{}", path.display()),
            DataLocation::ObjectStore(url) => write!(f, "{url}"),
        }
    }
}

impl DataLocation {
    /// Parses `--data`: `s3://bucket[/prefix]` for object storage, any other `scheme://` refused
    /// (a path like `gs://x` would otherwise silently become the local directory `./gs:/x`),
    /// anything else a local directory.
    pub fn parse(text: &str) -> Result<DataLocation, String> {
        let Some((scheme, rest)) = url_scheme(text) else {
            return Ok(DataLocation::Local(PathBuf::from(text)));
        };
        if !scheme.eq_ignore_ascii_case("s3") {
            return Err(format!(
                "`{scheme}://` is not supported: --data is a local directory or s3://bucket/prefix (S3 and S3-compatible stores)"
            ));
        }
        let mut segments = rest.split('/').filter(|s| !s.is_empty());
        let bucket = segments
            .next()
            .filter(|_| !rest.starts_with('/'))
            .ok_or_else(|| format!("`{text}` names no bucket: use s3://bucket/prefix"))?;
        if segments.clone().any(|s| s == "." || s == "..") {
            return Err(format!("`{text}`: `.` and `..` are not key segments"));
        }
        Ok(DataLocation::ObjectStore(StoreUrl {
            bucket: bucket.to_string(),
            prefix: segments.collect::<Vec<_>>().join("/"),
        }))
    }

    /// The local directory, for commands that only work on one.
    pub fn local(&self) -> Option<&PathBuf> {
        match self {
            DataLocation::Local(path) => Some(path),
            DataLocation::ObjectStore(_) => None,
        }
    }
}

fn url_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let is_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    is_scheme.then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(bucket: &str, prefix: &str) -> DataLocation {
        DataLocation::ObjectStore(StoreUrl {
            bucket: bucket.into(),
            prefix: prefix.into(),
        })
    }

    #[test]
    fn parses_local_paths_and_s3_urls() {
        assert_eq!(
            DataLocation::parse("scopewatch-data"),
            Ok(DataLocation::Local("scopewatch-data".into()))
        );
        assert_eq!(DataLocation::parse("s3://b"), Ok(store("b", "")));
        assert_eq!(DataLocation::parse("S3://b/x//y/"), Ok(store("b", "x/y")));
        let url = StoreUrl {
            bucket: "b".into(),
            prefix: "x/y".into(),
        };
        assert_eq!(url.url_of("access/"), "s3://b/x/y/access/");
        assert_eq!(url.to_string(), "s3://b/x/y");
    }

    #[test]
    fn refuses_other_schemes_and_bucketless_urls() {
        for bad in [
            "gs://b/x",
            "file:///tmp/x",
            "s3://",
            "s3:///x",
            "s3://b/../x",
        ] {
            assert!(DataLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
