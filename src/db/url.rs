//! `DATABASE_URL`, held so that its password can never reach a log line or
//! an error message: `Display` and `Debug` both print the redacted form.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use url::Url;

/// A PostgreSQL connection URL (`postgres://user:password@host:port/db`).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: Url,
    redacted: String,
}

/// Why a `DATABASE_URL` could not be used. Never contains the password.
#[derive(Debug, thiserror::Error)]
#[error("DATABASE_URL `{redacted}` is not usable: {reason}; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
pub struct UrlError {
    redacted: String,
    reason: String,
}

impl DatabaseUrl {
    /// Reads `DATABASE_URL` from the environment (after `.env` has been
    /// loaded); `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<DatabaseUrl>, UrlError> {
        match std::env::var("DATABASE_URL") {
            Ok(value) if !value.trim().is_empty() => value.trim().parse().map(Some),
            _ => Ok(None),
        }
    }

    /// The URL with its password replaced by `***`, safe to log.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The full URL, password included. Only for handing to a child process
    /// (e.g. through an environment variable); never print it.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The same server and credentials, another database.
    pub fn with_database(&self, database: &str) -> DatabaseUrl {
        let mut url = self.url.clone();
        url.set_path(&format!("/{database}"));
        DatabaseUrl::from_parsed(url)
    }

    /// sqlx connect options, with `application_name = tally` so DBAs can tell
    /// tally's sessions apart in `pg_stat_activity`.
    pub fn connect_options(&self) -> Result<PgConnectOptions, UrlError> {
        self.url.as_str().parse::<PgConnectOptions>().map(|options| options.application_name("tally")).map_err(|e| {
            UrlError {
                redacted: self.redacted.clone(),
                reason: e.to_string().replace(self.url.as_str(), &self.redacted),
            }
        })
    }

    fn from_parsed(url: Url) -> DatabaseUrl {
        let mut shown = url.clone();
        if shown.password().is_some() {
            // set_password only fails for URLs that cannot have one, and this one has one.
            let _ = shown.set_password(Some("***"));
        }
        DatabaseUrl { redacted: shown.to_string(), url }
    }
}

impl FromStr for DatabaseUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let url = Url::parse(text).map_err(|e| UrlError { redacted: redact_unparsed(text), reason: e.to_string() })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(UrlError {
                redacted: redact_unparsed(text),
                reason: format!("the scheme is `{}`, not postgres", url.scheme()),
            });
        }
        let parsed = DatabaseUrl::from_parsed(url);
        parsed.connect_options()?;
        Ok(parsed)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

/// Best-effort redaction of a string that did not parse as a URL: hide
/// everything between `://` and the last `@`.
fn redact_unparsed(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(start), Some(at)) if at > start + 3 => format!("{}***{}", &text[..start + 3], &text[at..]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let url: DatabaseUrl = "postgres://tally:s3cret-pw@db.internal:5432/marketing".parse().unwrap();
        assert_eq!(url.redacted(), "postgres://tally:***@db.internal:5432/marketing");
        assert!(!format!("{url} {url:?}").contains("s3cret-pw"));
        assert!(url.expose().contains("s3cret-pw"));
    }

    #[test]
    fn another_database_keeps_the_credentials() {
        let url: DatabaseUrl = "postgres://tally:pw@localhost:5432/postgres".parse().unwrap();
        assert_eq!(url.with_database("tally_test_1").expose(), "postgres://tally:pw@localhost:5432/tally_test_1");
    }

    #[test]
    fn bad_urls_are_explained_without_the_password() {
        let err = "mysql://root:hunter2@localhost/db".parse::<DatabaseUrl>().unwrap_err().to_string();
        assert!(err.contains("not postgres"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = "not a url at all".parse::<DatabaseUrl>().unwrap_err().to_string();
        assert!(err.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"), "{err}");
        let err = "postgres://u:hunter2@host:notaport/db".parse::<DatabaseUrl>().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
