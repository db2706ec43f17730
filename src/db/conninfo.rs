//! libpq's keyword/value connection strings (`host=db port=5432 user=tally
//! password='s3 cret' dbname=marketing`), the other form `DATABASE_URL`
//! takes besides a URL. Parsed as libpq parses them (spaces around `=`
//! optional, single quotes around values with spaces, `\'` and `\\`
//! escapes) and turned into the equivalent `postgres://` URL, so the rest of
//! tally handles one form. Errors never quote a value: only keywords.

use url::Url;

/// Keywords libpq knows that tally's driver has no use for: accepted, with
/// a warning, so a string written for psql still works.
const IGNORED: &[&str] = &[
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "target_session_attrs",
    "client_encoding",
    "fallback_application_name",
    "gssencmode",
    "channel_binding",
    "sslcompression",
    "sslsni",
    "requirepeer",
    "krbsrvname",
];

/// Keywords passed on as URL query parameters the driver reads.
const AS_QUERY: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "options", "hostaddr"];

/// Whether `text` is written in keyword/value form: it starts with a
/// keyword (letters and `_`) followed, after optional spaces, by `=`.
pub fn looks_like_conninfo(text: &str) -> bool {
    let text = text.trim_start();
    let keyword_len = text.find(|c: char| !(c.is_ascii_alphabetic() || c == '_')).unwrap_or(text.len());
    keyword_len > 0 && text[keyword_len..].trim_start().starts_with('=')
}

/// A keyword/value string as a URL, plus the keywords that were ignored.
pub fn to_url(text: &str) -> Result<(Url, Vec<String>), String> {
    let pairs = parse(text)?;
    let mut url = Url::parse("postgres://localhost").map_err(|e| e.to_string())?;
    let mut query: Vec<(String, String)> = Vec::new();
    let mut ignored = Vec::new();
    for (keyword, value) in pairs {
        match keyword.as_str() {
            "host" if value.contains(',') => {
                return Err("several hosts in `host` are not supported; name one server".to_string());
            }
            "host" if value.starts_with('/') => query.push(("host".into(), value)),
            "host" if !value.is_empty() => {
                let host = if value.contains(':') { format!("[{value}]") } else { value };
                url.set_host(Some(&host)).map_err(|e| format!("`host` is not a host name or address ({e})"))?;
            }
            "host" => {}
            "port" => {
                let port = value.parse::<u16>().map_err(|_| "`port` is not a port number (1 to 65535)".to_string())?;
                url.set_port(Some(port)).map_err(|()| "`port` cannot be set".to_string())?;
            }
            "user" => url.set_username(&value).map_err(|()| "`user` cannot be set".to_string())?,
            "password" => url.set_password(Some(&value)).map_err(|()| "`password` cannot be set".to_string())?,
            "dbname" => url.set_path(&format!("/{}", encode_segment(&value))),
            keyword if AS_QUERY.contains(&keyword) => query.push((keyword.to_string(), value)),
            keyword if IGNORED.contains(&keyword) => ignored.push(keyword.to_string()),
            keyword => {
                // A keyword is not a secret, but a mistyped pair might put one there.
                let shown = match keyword.len() <= 32 && keyword.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    true => format!("`{keyword}`"),
                    false => "(not shown)".to_string(),
                };
                return Err(format!(
                    "unknown keyword {shown}; tally understands host, hostaddr, port, user, password, dbname, \
                     sslmode, sslrootcert, sslcert, sslkey, application_name and options"
                ));
            }
        }
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok((url, ignored))
}

/// `keyword = value` pairs, as libpq's `conninfo_parse` reads them.
fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    for item in 1.. {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut keyword = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            keyword.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // Not named: a word without `=` may be a password typed on its own.
            return Err(format!("item {item} has no `=`; write keyword=value pairs separated by spaces"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("the value of `{keyword}` has no closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        pairs.push((keyword.to_ascii_lowercase(), value));
    }
    Ok(pairs)
}

/// A keyword/value string that did not parse, with every value hidden
/// (`host=*** password=***`): what is left of it is safe to print.
pub fn keywords_only(text: &str) -> String {
    text.split_whitespace()
        .map(|word| match word.split_once('=') {
            Some((keyword, _)) if keyword.chars().all(|c| c.is_ascii_alphabetic() || c == '_') => {
                format!("{keyword}=***")
            }
            _ => "***".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A database name as one URL path segment.
fn encode_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_value_strings_become_urls() {
        let (url, ignored) =
            to_url("host=db.internal port=6432 user=tally password='s3 cr\\'et' dbname=marketing sslmode=require")
                .unwrap();
        assert_eq!(url.host_str(), Some("db.internal"));
        assert_eq!(url.port(), Some(6432));
        assert_eq!(url.username(), "tally");
        let password = url.password().unwrap();
        assert_eq!(url::form_urlencoded::parse(format!("p={password}").as_bytes()).next().unwrap().1, "s3 cr'et");
        assert_eq!(url.path(), "/marketing");
        assert_eq!(url.query(), Some("sslmode=require"));
        assert!(ignored.is_empty());

        let (url, ignored) = to_url("host = /var/run/postgresql dbname = 'my db' connect_timeout=10").unwrap();
        assert_eq!(url.query(), Some("host=%2Fvar%2Frun%2Fpostgresql"));
        assert_eq!(url.path(), "/my%20db");
        assert_eq!(ignored, ["connect_timeout"]);
        let (url, _) = to_url("host=::1 user=u").unwrap();
        assert_eq!(url.host_str(), Some("[::1]"));
    }

    #[test]
    fn bad_strings_name_the_keyword_never_the_value() {
        for (text, expected) in [
            ("host=h password='unclosed dbname=x", "no closing quote"),
            ("host=h passwd=hunter2", "unknown keyword `passwd`"),
            ("host=h port=hunter2", "not a port number"),
            ("host=a,b password=hunter2", "several hosts"),
            ("host=h hunter2", "item 2 has no `=`"),
            ("host=h Hunter2=x", "unknown keyword (not shown)"),
        ] {
            let err = to_url(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.to_lowercase().contains("hunter2"), "{text}: {err}");
        }
    }

    #[test]
    fn only_keyword_value_strings_are_taken_for_them() {
        assert!(looks_like_conninfo("host=db dbname=x"));
        assert!(looks_like_conninfo("  dbname = x"));
        assert!(!looks_like_conninfo("postgres://u:p@h/db"));
        assert!(!looks_like_conninfo("u:p@host/db"));
        assert!(!looks_like_conninfo("postgres//u:p@h/db?x=1"));
    }
}
