//! Id-like fields (`_id`, `userId`, `session` and the other names
//! `identifier()` reads) to the text stored in `event_id`, `user_id` and
//! `session_id`. MongoDB exports one id in several shapes: a plain number in
//! relaxed Extended JSON, `{"$numberInt": "42"}` in canonical, a UUID as
//! `$binary` (canonical or legacy) or `$uuid`. Every shape of one value gives
//! one text, so a relaxed and a canonical export of the same collection make
//! duplicates on a second load, never a second copy of each event.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::{kind, number, short};

/// Standard base64 (what Extended JSON writes), padded or not: a missing `=`
/// is no reason to lose an event.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The text of an id found at `key` (named in the reasons); `Err` is why the
/// document is rejected.
pub(super) fn text(key: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        // With serde_json's `arbitrary_precision`, the digits as written: 42.0 stays 42.0.
        Value::Number(n) => Ok(n.to_string()),
        Value::Object(ref map) => wrapped_id(key, map, &value),
        other => Err(not_an_id(key, &other)),
    }
}

/// An id in an Extended JSON wrapper. `whole` (the wrapper as a value) is
/// written out in reasons only: most ids are ObjectIds, one per line.
fn wrapped_id(key: &str, map: &Map<String, Value>, whole: &Value) -> Result<String, String> {
    let as_text = |inner: &Value| match inner {
        Value::String(text) => Ok(text.clone()),
        _ => Err(format!(
            "`{key}` {}: the number must be written as a string, as Extended JSON does (e.g. {{\"$numberInt\":\"42\"}})",
            short(whole)
        )),
    };
    if let (Some(payload), Some(subtype), 2) = (map.get("$binary"), map.get("$type"), map.len()) {
        return binary_uuid(key, whole, payload, subtype);
    }
    let Some((wrapper, inner)) = map.iter().next().filter(|_| map.len() == 1) else {
        return Err(not_an_id(key, whole));
    };
    match wrapper.as_str() {
        "$oid" if inner.is_string() => as_text(inner),
        "$numberInt" => {
            integer::<i32>(&as_text(inner)?).ok_or_else(|| format!("`{key}` {} is not a 32-bit integer", short(whole)))
        }
        "$numberLong" => {
            integer::<i64>(&as_text(inner)?).ok_or_else(|| format!("`{key}` {} is not a 64-bit integer", short(whole)))
        }
        "$numberDouble" | "$numberDecimal" => decimal(key, whole, &as_text(inner)?),
        "$uuid" => inner
            .as_str()
            .and_then(hyphenated_uuid)
            .ok_or_else(|| format!("`{key}` {} is not a UUID (32 hex digits grouped 8-4-4-4-12)", short(whole))),
        "$binary" => match inner {
            Value::Object(binary) => match (binary.get("base64"), binary.get("subType"), binary.len()) {
                (Some(payload), Some(subtype), 2) => binary_uuid(key, whole, payload, subtype),
                _ => Err(format!("`{key}` {}: `$binary` needs `base64` and `subType`, and nothing else", short(whole))),
            },
            _ => Err(format!("`{key}` {}: a legacy `$binary` needs its `$type` beside it", short(whole))),
        },
        _ => Err(not_an_id(key, whole)),
    }
}

/// An integer's decimal text, through the integer type itself (never a float,
/// so 9007199254740993 stays exact). Leading zeros and a `+` are dropped.
fn integer<T: std::str::FromStr + ToString>(digits: &str) -> Option<String> {
    digits.parse::<T>().ok().map(|n| n.to_string())
}

/// A double's or decimal's digits as written, which is what a plain JSON
/// number id gives: mongoexport writes a double as `42.0` in relaxed form and
/// `{"$numberDouble":"42.0"}` in canonical, and both must be one id.
fn decimal(key: &str, whole: &Value, digits: &str) -> Result<String, String> {
    if let Some(Value::Number(n)) = number(digits) {
        return Ok(n.to_string());
    }
    let trimmed = digits.trim().trim_start_matches(['-', '+']);
    if ["nan", "inf", "infinity"].contains(&trimmed.to_ascii_lowercase().as_str()) {
        Err(format!("`{key}` {} is not a finite number, so it cannot identify anything", short(whole)))
    } else {
        Err(format!("`{key}` {} is not a decimal number", short(whole)))
    }
}

/// A binary id, which must be a UUID: subtype 04, or 03 (the legacy UUID
/// subtype, whose bytes are shown in stored order; drivers that stored them
/// reordered, such as the old Java and C# ones, show another text for it).
fn binary_uuid(key: &str, whole: &Value, payload: &Value, subtype: &Value) -> Result<String, String> {
    let (Some(payload), Some(subtype)) = (payload.as_str(), subtype.as_str()) else {
        return Err(format!("`{key}` {}: the binary's payload and subtype must be strings", short(whole)));
    };
    let subtype = u8::from_str_radix(subtype, 16)
        .map_err(|_| format!("`{key}` {}: the binary subtype `{subtype}` is not a hex byte", short(whole)))?;
    if subtype != 3 && subtype != 4 {
        return Err(format!(
            "`{key}` is binary subtype {subtype:02x}, not a UUID (subtype 03 or 04): only UUIDs among binaries can be ids"
        ));
    }
    let bytes =
        BASE64.decode(payload).map_err(|e| format!("`{key}` {}: the payload is not base64 ({e})", short(whole)))?;
    let bytes: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
        format!("`{key}` is a UUID binary of {}; a UUID has 16", crate::db::plural(bytes.len() as u64, "byte"))
    })?;
    Ok(format_uuid(&bytes))
}

/// `$uuid` text in canonical form (lowercase), if it is 8-4-4-4-12 hex digits.
fn hyphenated_uuid(text: &str) -> Option<String> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let hex = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    (lengths == [8, 4, 4, 4, 12] && hex).then(|| text.to_ascii_lowercase())
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn not_an_id(key: &str, value: &Value) -> String {
    format!(
        "`{key}` must be a string, a number or an ObjectId, found {} {}; numbers may be wrapped \
         ($numberInt, $numberLong, $numberDouble, $numberDecimal), and a UUID ($binary subtype 03 or 04, or $uuid) \
         is accepted too",
        kind(value),
        short(value)
    )
}
