//! `DATABASE_URL`, held so that its password can never reach a log line or
//! an error message: `Display` and `Debug` both print the redacted form.

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use sqlx::postgres::PgConnectOptions;
use url::Url;

use super::conninfo;

/// A PostgreSQL connection URL (`postgres://user:password@host:port/db`).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: Url,
    redacted: String,
}

/// Why a `DATABASE_URL` could not be used. Never contains the password.
#[derive(Debug, thiserror::Error)]
#[error(
    "DATABASE_URL `{redacted}` is not usable: {reason}; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE \
     or as libpq keyword/value pairs (host=HOST port=PORT user=USER password=PASSWORD dbname=DATABASE)"
)]
pub struct UrlError {
    redacted: String,
    reason: String,
}

impl DatabaseUrl {
    /// Reads `DATABASE_URL` from the environment (after `.env` has been
    /// loaded); `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<DatabaseUrl>, UrlError> {
        crate::config::env::Environment::read().database_url.map(|value| value.parse()).transpose()
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
        self.url
            .as_str()
            .parse::<PgConnectOptions>()
            .map(|options| options.application_name("tally"))
            .map_err(|e| UrlError { redacted: self.redacted.clone(), reason: self.scrub(&super::describe(&e)) })
    }

    /// `text` with this URL's password (as written and decoded) and the
    /// whole URL replaced by their redacted forms: a last guard for error
    /// text that a library may have built from the URL.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(self.url.as_str(), &self.redacted);
        for secret in self.secrets() {
            // A very short password would blank out ordinary words; it is not
            // quoted by any message tally or the driver writes either.
            if secret.len() >= 3 {
                text = text.replace(&secret, "***");
            }
        }
        text
    }

    /// The password as it appears in the URL and decoded, and a `password`
    /// query parameter's value.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        if let Some(password) = self.url.password() {
            secrets.push(password.to_string());
            if let Ok(decoded) = percent_decode_str(password).decode_utf8() {
                secrets.push(decoded.into_owned());
            }
        }
        secrets.extend(self.url.query_pairs().filter(|(k, _)| k == "password").map(|(_, v)| v.into_owned()));
        secrets
    }

    fn from_parsed(url: Url) -> DatabaseUrl {
        let mut shown = url.clone();
        if shown.password().is_some() {
            // set_password only fails for URLs that cannot have one, and this one has one.
            let _ = shown.set_password(Some("***"));
        }
        if shown.query_pairs().any(|(k, _)| k == "password") {
            let pairs: Vec<(String, String)> = shown
                .query_pairs()
                .map(|(k, v)| {
                    let hidden = if k == "password" { "***".to_string() } else { v.into_owned() };
                    (k.into_owned(), hidden)
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        DatabaseUrl { redacted: shown.to_string(), url }
    }
}

impl FromStr for DatabaseUrl {
    type Err = UrlError;

    /// A `postgres://` (or `postgresql://`) URL, or libpq keyword/value pairs.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let unusable = |reason: String| UrlError { redacted: redact_unparsed(text), reason };
        let url = if conninfo::looks_like_conninfo(text) {
            let (url, ignored) = conninfo::to_url(text)
                .map_err(|reason| UrlError { redacted: conninfo::keywords_only(text), reason })?;
            for keyword in ignored {
                tracing::warn!(keyword, "DATABASE_URL: this libpq keyword has no effect in tally; ignored");
            }
            url
        } else {
            let url = Url::parse(text).map_err(|e| unusable(e.to_string()))?;
            if !matches!(url.scheme(), "postgres" | "postgresql") {
                return Err(unusable(format!("the scheme is `{}`, not postgres", url.scheme())));
            }
            if !text.contains("://") {
                return Err(unusable("`//` is missing after `postgres:`".to_string()));
            }
            // An `@` the parser did not take as the end of USER:PASSWORD sits
            // in the path, query or fragment: a password with a raw `/`, `?`
            // or `#` that made the parser stop early (`u:12/secret@host`
            // reads as host `u`, port 12). Taken as written, the password
            // would be shown as part of the path.
            if url.username().is_empty() && url.password().is_none() && text.contains('@') {
                return Err(unusable(
                    "the part before `@` is not USER:PASSWORD as written; percent-encode `/`, `?`, `#` and `@` in the \
                     password (%2F, %3F, %23, %40)"
                        .to_string(),
                ));
            }
            without_unknown_parameters(url)
        };
        let parsed = DatabaseUrl::from_parsed(url);
        parsed.connect_options()?;
        Ok(parsed)
    }
}

/// Query parameters the driver reads; it logs any other with its value,
/// which could be a secret under a mistyped name (`?pasword=...`).
const KNOWN_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// `url` without the query parameters the driver does not know, each
/// dropped with a warning that names it but not its value.
fn without_unknown_parameters(mut url: Url) -> Url {
    let known = |key: &str| KNOWN_PARAMETERS.contains(&key) || key.starts_with("options[");
    if url.query_pairs().all(|(key, _)| known(&key)) {
        return url;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| {
            let keep = known(key);
            if !keep {
                tracing::warn!(parameter = %key, "DATABASE_URL: unknown query parameter ignored");
            }
            keep
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    url
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

/// Redaction of a string that could not be parsed, so nothing in it can be
/// trusted to be where a URL keeps its password: everything before the last
/// `@` (after a `scheme://`) is hidden; without an `@`, everything after
/// `scheme://` up to the path (`tally:s3cret` may be USER:PASSWORD with the
/// host forgotten), and a value with neither is not shown at all (a lone
/// word may be the password itself); every `password=` value is hidden.
fn redact_unparsed(text: &str) -> String {
    let scheme_end = text.find("://").map(|i| i + 3);
    let mut shown = match (text.rfind('@'), scheme_end) {
        (Some(at), _) => {
            let keep = scheme_end.unwrap_or(0).min(at);
            format!("{}***{}", &text[..keep], &text[at..])
        }
        (None, Some(start)) => {
            let end = text[start..].find(['/', '?', '#']).map_or(text.len(), |i| start + i);
            format!("{}***{}", &text[..start], &text[end..])
        }
        (None, None) => "(not shown)".to_string(),
    };
    let lower = shown.to_ascii_lowercase();
    if let Some(start) = lower.find("password") {
        // From the keyword on, nothing is shown: the value may be quoted,
        // contain spaces, or run to the end.
        shown = format!("{}password=***", &shown[..start]);
    }
    shown
}

#[cfg(test)]
mod tests;
