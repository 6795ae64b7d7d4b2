//! Where a store lives, as given on the command line (`--store`, `--data-dir`) or in
//! [`Config`](crate::engine::Config): a folder for the embedded sled store, or a
//! `postgres://` URL. A URL's password is never shown: [`StoreLocation`]'s `Display` and
//! every error name the store by [`StoreLocation::redacted`].

use std::path::PathBuf;

/// Where a store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store ([`SledStore`](super::SledStore)) in this folder: the default.
    Sled(PathBuf),
    /// A PostgreSQL database, by its `postgres://` (or `postgresql://`) URL (feature
    /// `postgres`).
    Postgres(String),
}

impl StoreLocation {
    /// Reads a `--store` value: a `postgres://` or `postgresql://` URL, else a folder.
    pub fn parse(text: &str) -> StoreLocation {
        if is_postgres_url(text) {
            StoreLocation::Postgres(text.to_string())
        } else {
            StoreLocation::Sled(PathBuf::from(text))
        }
    }

    /// The location as it may be shown (logs, errors, the `serve` banner): a URL's password
    /// replaced by `***`, both in its user part and as a `password=` parameter.
    pub fn redacted(&self) -> String {
        match self {
            StoreLocation::Sled(path) => path.display().to_string(),
            StoreLocation::Postgres(url) => redact_url(url),
        }
    }

    /// The folder of a sled store, if this is one.
    pub fn folder(&self) -> Option<&std::path::Path> {
        match self {
            StoreLocation::Sled(path) => Some(path),
            StoreLocation::Postgres(_) => None,
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sled(path) => f.debug_tuple("Sled").field(path).finish(),
            StoreLocation::Postgres(_) => {
                f.debug_tuple("Postgres").field(&self.redacted()).finish()
            }
        }
    }
}

impl std::str::FromStr for StoreLocation {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<StoreLocation, Self::Err> {
        Ok(StoreLocation::parse(text))
    }
}

/// Whether `text` is a PostgreSQL URL.
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// `url` with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(scheme_end);
    // The authority ends at the first `/`, `?` or `#`; its user part at the last `@` in it.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (user, host) = authority.split_at(at);
            match user.split_once(':') {
                Some((name, _)) => format!("{name}:***{host}"),
                None => format!("{user}{host}"),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => param.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_folders() {
        assert_eq!(
            StoreLocation::parse("./data"),
            StoreLocation::Sled("./data".into())
        );
        assert!(matches!(
            StoreLocation::parse("postgresql://h/db"),
            StoreLocation::Postgres(_)
        ));
        assert!(matches!(
            StoreLocation::parse("POSTGRES://h/db"),
            StoreLocation::Postgres(_)
        ));
    }

    #[test]
    fn passwords_are_never_shown() {
        for (url, shown) in [
            (
                "postgres://sop:s3cret@db:5432/sopflow",
                "postgres://sop:***@db:5432/sopflow",
            ),
            (
                "postgres://sop:p@ss@db/sopflow",
                "postgres://sop:***@db/sopflow",
            ),
            ("postgres://sop@db/sopflow", "postgres://sop@db/sopflow"),
            (
                "postgres://db/sopflow?user=sop&password=s3cret&sslmode=disable",
                "postgres://db/sopflow?user=sop&password=***&sslmode=disable",
            ),
        ] {
            let location = StoreLocation::parse(url);
            assert_eq!(location.to_string(), shown);
            assert!(!format!("{location:?}").contains("s3cret"));
            assert!(!format!("{location:?}").contains("p@ss"));
        }
    }
}
