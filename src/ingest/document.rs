//! One NDJSON line to one `marketing.events` row: the brief's event document
//! (`_id`, `userId`, `event`, `properties`, `session`, `timestamp`) in plain
//! JSON or MongoDB Extended JSON (relaxed or canonical, as `mongoexport`
//! writes it), or tally's own column names. Pure: every rule is unit-tested.

mod ids;
pub mod limits;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

/// A document ready for `marketing.events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Line number in the input (1-based).
    pub line: u64,
    /// The document's id, or `sha256:` + a digest of the line when it has none,
    /// so loading the same line twice is always a duplicate.
    pub event_id: String,
    pub user_id: Option<String>,
    pub event: String,
    /// The properties as JSON text, Extended JSON wrappers turned into plain values.
    pub properties: String,
    pub session_id: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The line as read (cut at 64 KiB, like a rejected line's), kept for
    /// the rejects file in case PostgreSQL refuses the row after all.
    pub text: String,
}

/// How much of a line a rejection keeps.
pub const TEXT_KEPT: usize = 64 * 1024;

/// Parses one line (without its newline). `Err` is the reason it is rejected.
pub fn parse(line_number: u64, text: &[u8]) -> Result<Row, String> {
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Err("empty line".to_string());
    }
    let value: Value = serde_json::from_slice(trimmed).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut document) = value else {
        return Err(format!("not a JSON object but {}", kind(&value)));
    };
    let event = match take(&mut document, &["event"]) {
        None | Some((_, Value::Null)) => return Err("no `event`: every document needs an event name".to_string()),
        Some((_, Value::String(event))) if !event.trim().is_empty() => limits::label("event", event)?,
        Some((_, other)) => return Err(format!("`event` must be a non-empty string, found {}", kind(&other))),
    };
    let occurred_at = match take(&mut document, &["occurred_at", "timestamp"]) {
        None | Some((_, Value::Null)) => return Err("no timestamp: add `timestamp` (or `occurred_at`)".to_string()),
        Some((key, value)) => timestamp(&value).ok_or_else(|| {
            format!(
                "unparsable `{key}` {}: write an ISO-8601 time (2026-03-03T10:00:00Z), {{\"$date\": ...}} or epoch milliseconds, in the years 1 to 9999",
                short(&value)
            )
        })?,
    };
    let mut properties = match take(&mut document, &["properties"]) {
        None | Some((_, Value::Null)) => Map::new(),
        Some((_, Value::Object(map))) => map,
        Some((_, other)) => return Err(format!("`properties` must be an object, found {}", kind(&other))),
    };
    let event_id = indexed_identifier(&mut document, &["event_id", "_id", "eventId"])?;
    let user_id = indexed_identifier(&mut document, &["user_id", "userId"])?;
    let session_id = identifier(&mut document, &["session_id", "session", "sessionId"])?;
    let mut utm = |name: &'static str| -> Result<Option<String>, String> {
        match take(&mut document, &[name]) {
            None | Some((_, Value::Null)) => {
                properties.get(name).and_then(|v| v.as_str()).map(|s| limits::label(name, s.to_string())).transpose()
            }
            Some((key, Value::String(s))) => limits::label(key, s).map(Some),
            Some((key, other)) => Err(format!("`{key}` must be a string, found {}", kind(&other))),
        }
    };
    let (utm_source, utm_medium, utm_campaign) = (utm("utm_source")?, utm("utm_medium")?, utm("utm_campaign")?);
    // Anything else the document carries is kept, in properties, unless properties has that key.
    for (key, value) in document {
        properties.entry(key).or_insert(value);
    }
    let properties = Value::Object(plain(properties));
    limits::numbers(&properties)?;
    let properties = serde_json::to_string(&properties).map_err(|e| format!("properties cannot be written: {e}"))?;
    let row = Row {
        line: line_number,
        event_id: event_id.unwrap_or_else(|| digest(trimmed)),
        user_id,
        event,
        properties,
        session_id,
        utm_source,
        utm_medium,
        utm_campaign,
        occurred_at,
        text: String::from_utf8_lossy(&text[..text.len().min(TEXT_KEPT)]).into_owned(),
    };
    if has_nul(&row) {
        return Err("contains a NUL character (\\u0000), which PostgreSQL text and jsonb cannot store".to_string());
    }
    Ok(row)
}

/// Removes and returns the first of `keys` present in `document`.
fn take(document: &mut Map<String, Value>, keys: &[&'static str]) -> Option<(&'static str, Value)> {
    keys.iter().find_map(|key| document.remove(*key).map(|value| (*key, value)))
}

/// An id-like field: a string, a number (plain or wrapped), an ObjectId or a
/// UUID; see `ids` for the text each gives.
fn identifier(document: &mut Map<String, Value>, keys: &[&'static str]) -> Result<Option<String>, String> {
    match take(document, keys) {
        None | Some((_, Value::Null)) => Ok(None),
        Some((key, value)) => ids::text(key, value).map(Some),
    }
}

/// An id that is a key of a B-tree index, so bounded in length (see `limits`).
fn indexed_identifier(document: &mut Map<String, Value>, keys: &[&'static str]) -> Result<Option<String>, String> {
    match take(document, keys) {
        None | Some((_, Value::Null)) => Ok(None),
        Some((key, value)) => limits::index_key(key, ids::text(key, value)?).map(Some),
    }
}

/// The value inside a one-key Extended JSON wrapper such as `{"$oid": ...}`.
fn wrapped<'a>(value: &'a Value, wrapper: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get(wrapper),
        _ => None,
    }
}

/// A timestamp: ISO-8601 text, epoch milliseconds, or `{"$date": ...}` in
/// relaxed (text) or canonical (`{"$numberLong": "..."}`) form.
fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .or_else(|| DateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f%#z").ok())
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => n.as_i64().and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        Value::Object(_) => {
            let inner = wrapped(value, "$date").or_else(|| wrapped(value, "$numberLong"))?;
            match inner {
                Value::Object(_) => wrapped(inner, "$numberLong")
                    .and_then(Value::as_str)
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
                Value::String(text) if wrapped(value, "$numberLong").is_some() => {
                    text.parse::<i64>().ok().and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                }
                other => timestamp(other),
            }
        }
        _ => None,
    }
    .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
}

/// Turns Extended JSON type wrappers into plain JSON, recursively: numbers
/// become JSON numbers (decimals exact: the digits are kept as written), dates
/// ISO-8601 strings, ObjectIds their hex strings. Non-finite numbers (NaN,
/// Infinity), which JSON cannot hold, become strings.
fn plain(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter().map(|(key, value)| (key, plain_value(value))).collect()
}

fn plain_value(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(plain_value).collect()),
        Value::Object(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
            match (key.as_str(), &inner) {
                ("$numberDecimal" | "$numberLong" | "$numberInt" | "$numberDouble", Value::String(digits)) => {
                    number(digits).unwrap_or(Value::String(digits.clone()))
                }
                ("$date", _) => match timestamp(&Value::Object(map.clone())) {
                    Some(at) => Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                    None => Value::Object(plain(map)),
                },
                ("$oid", Value::String(hex)) => Value::String(hex.clone()),
                _ => Value::Object(plain(map)),
            }
        }
        Value::Object(map) => Value::Object(plain(map)),
        other => other,
    }
}

/// A JSON number from its decimal text, exactly as written.
fn number(digits: &str) -> Option<Value> {
    serde_json::from_str::<Number>(digits.trim()).ok().map(Value::Number)
}

fn digest(line: &[u8]) -> String {
    let hash = Sha256::digest(line);
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn has_nul(row: &Row) -> bool {
    let texts = [Some(&row.event_id), row.user_id.as_ref(), Some(&row.event), row.session_id.as_ref()];
    texts.iter().flatten().any(|t| t.contains('\0'))
        || [&row.utm_source, &row.utm_medium, &row.utm_campaign]
            .iter()
            .any(|t| t.as_ref().is_some_and(|t| t.contains('\0')))
        || row.properties.contains("\\u0000")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn short(value: &Value) -> String {
    cut(value.to_string(), 80)
}

/// The first `chars` characters of `text`, for reasons that quote the input
/// (which may be megabytes long) and are printed on stderr.
pub(super) fn cut(text: String, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests;
