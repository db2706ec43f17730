//! What PostgreSQL can store, checked while parsing: a value it would refuse
//! fails the `COPY` or `INSERT` of a whole batch, so the parser rejects its
//! line here, with a reason that says what to change. Two limits matter:
//! jsonb numbers are `numeric`, which has bounds far below what JSON text can
//! write (`1e999999`), and `event_id` and `user_id` are keys of B-tree
//! indexes, whose entries must fit in a third of a page.
//!
//! Anything else PostgreSQL refuses is caught by the loader, which then
//! rejects only the lines it refuses (see `load/bisect.rs`).

use serde_json::Value;

/// Longest `event_id` and `user_id`, in bytes of UTF-8. A B-tree index entry
/// holds at most 2704 bytes; an entry of `(event_id, occurred_at)` or
/// `(user_id, occurred_at)` is the id, an 8-byte timestamp and about 20 bytes
/// of headers. PostgreSQL compresses long entries, so some longer ids would
/// fit and some would not; 2000 is a limit that holds for every id, with room
/// to spare, and far above any id a real system writes.
pub const MAX_ID_BYTES: usize = 2000;

/// Longest `event` and UTM value, in bytes of UTF-8. They are keys of the
/// aggregates' unique indexes (`daily_campaign_metrics` holds three UTM
/// values in one entry, at most 2704 bytes): a longer one would load, then
/// make every refresh of those aggregates fail. Real event names and UTM
/// values are a few dozen bytes.
pub const MAX_LABEL_BYTES: usize = 500;

/// `Ok(text)` when `text`, the event name or UTM value found at `key`, fits
/// in the aggregates' keys.
pub(super) fn label(key: &str, text: String) -> Result<String, String> {
    if text.len() <= MAX_LABEL_BYTES {
        return Ok(text);
    }
    Err(format!(
        "`{key}` is {} bytes long; event names and UTM values are limited to {MAX_LABEL_BYTES} bytes, because the \
         aggregates' indexes on them cannot hold much longer values",
        text.len()
    ))
}

/// Most digits `numeric` (and so a jsonb number) holds before the decimal point.
pub const MAX_INTEGER_DIGITS: i64 = 131_072;
/// Most digits `numeric` holds after the decimal point (its display scale).
pub const MAX_FRACTION_DIGITS: i64 = 16_383;
/// PostgreSQL refuses an exponent whose magnitude reaches `INT_MAX / 2`,
/// whatever the digits (`0e1073741823` included).
const MAX_EXPONENT: i64 = (i32::MAX / 2) as i64 - 1;

/// `Ok(text)` when `text`, the id found at `key`, fits in the indexes.
pub(super) fn index_key(key: &str, text: String) -> Result<String, String> {
    if text.len() <= MAX_ID_BYTES {
        return Ok(text);
    }
    Err(format!(
        "`{key}` is {} bytes long; ids are limited to {MAX_ID_BYTES} bytes, because PostgreSQL's index on it cannot \
         hold much longer values",
        text.len()
    ))
}

/// `Err` names the first number in `properties` that PostgreSQL's jsonb
/// cannot store, by its path (`properties.a.b[2]`).
pub(super) fn numbers(properties: &Value) -> Result<(), String> {
    let mut path = "properties".to_string();
    match first_unstorable(properties, &mut path) {
        None => Ok(()),
        Some((number, why)) => Err(format!(
            "`{}` is {}, a number PostgreSQL cannot store in jsonb: {why} (its numeric type holds at most \
             {MAX_INTEGER_DIGITS} digits before the decimal point and {MAX_FRACTION_DIGITS} after). Write it as a \
             string to keep it",
            super::cut(path, 80),
            super::cut(number, 80),
        )),
    }
}

/// The first number under `value` that does not fit, with why; `path` is
/// extended on the way down (and left at the number found).
fn first_unstorable(value: &Value, path: &mut String) -> Option<(String, &'static str)> {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            numeric_fits(&text).err().map(|why| (text, why))
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let length = path.len();
            path.push_str(&format!("[{i}]"));
            let found = first_unstorable(item, path);
            if found.is_none() {
                path.truncate(length);
            }
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let length = path.len();
            path.push('.');
            path.push_str(key);
            let found = first_unstorable(item, path);
            if found.is_none() {
                path.truncate(length);
            }
            found
        }),
        _ => None,
    }
}

/// Whether PostgreSQL's `numeric` input accepts a JSON number's text, by the
/// rules of `numeric_in`: the exponent's magnitude is below `INT_MAX / 2`,
/// the scale (digits after the point as written, trailing zeros included,
/// minus the exponent) is at most 16383, and a non-zero value's first digit
/// is at most 131071 places before the point. `Err` says which was broken.
pub fn numeric_fits(text: &str) -> Result<(), &'static str> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], exponent(&unsigned[at + 1..]).ok_or("its exponent is beyond ±1073741822")?),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let (integer_len, fraction_len) = (integer.len() as i64, fraction.len() as i64);
    if fraction_len - exponent > MAX_FRACTION_DIGITS {
        return Err("more than 16383 digits after the decimal point (trailing zeros and a negative exponent count)");
    }
    let first_nonzero = integer.bytes().chain(fraction.bytes()).position(|b| b != b'0');
    if let Some(position) = first_nonzero {
        // The power of ten of the first significant digit.
        if integer_len - 1 - position as i64 + exponent >= MAX_INTEGER_DIGITS {
            return Err("more than 131072 digits before the decimal point");
        }
    }
    Ok(())
}

/// An exponent's value (`+12`, `-0003`), `None` when PostgreSQL refuses it.
fn exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits.trim_start_matches('0');
    if digits.len() > 10 {
        return None;
    }
    let magnitude: i64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    (magnitude <= MAX_EXPONENT).then_some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verdicts of PostgreSQL 15 (`SELECT '{"a": <n>}'::jsonb`) on each number.
    #[test]
    fn numbers_are_judged_as_postgresql_judges_them() {
        let accepted = [
            "0",
            "-0",
            "1.5",
            "0e999999",
            "0e1073741822",
            "0e-16383",
            "1e131071",
            "9.9e131071",
            "0.0000e131076",
            "1e-16383",
            "-1E+131071",
            "123456789012345678901234567890",
            "1e0000000000000000000000005",
        ];
        let refused = [
            "1e999999",
            "1E+999999",
            "-1e999999",
            "1e-999999",
            "0e-999999",
            "0e-16384",
            "1e131072",
            "1e-16384",
            "1.5e-16383",
            "10e-16384",
            "1e1073741822",
            "0e1073741823",
            "0e-1073741823",
            "0e99999999999999999999",
        ];
        for number in accepted {
            assert_eq!(numeric_fits(number), Ok(()), "{number}");
        }
        for number in refused {
            assert!(numeric_fits(number).is_err(), "{number}");
        }
        let digits = |before: usize, after: usize| format!("{}.{}", "9".repeat(before), "0".repeat(after));
        assert_eq!(numeric_fits(&digits(131_072, 16_383)), Ok(()));
        assert!(numeric_fits(&digits(131_073, 0)).is_err());
        assert!(numeric_fits(&digits(1, 16_384)).is_err(), "trailing zeros count toward the scale");
    }

    #[test]
    fn the_first_unstorable_number_is_named_by_its_path() {
        let properties =
            serde_json::json!({"ok": 1, "cart": {"items": [2, serde_json::from_str::<Value>("1e999999").unwrap()]}});
        let reason = numbers(&properties).expect_err("out of range");
        assert!(
            reason.starts_with(
                "`properties.cart.items[1]` is 1e+999999, a number PostgreSQL cannot store in jsonb: \
                                more than 131072 digits before the decimal point"
            ),
            "{reason}"
        );
        assert_eq!(numbers(&serde_json::json!({"a": [1, 2.5, {"b": -3}]})), Ok(()));
    }

    #[test]
    fn ids_longer_than_the_limit_are_refused_by_their_bytes() {
        assert!(index_key("_id", "é".repeat(MAX_ID_BYTES / 2)).is_ok());
        let reason = index_key("userId", "é".repeat(MAX_ID_BYTES / 2 + 1)).expect_err("2002 bytes");
        assert!(reason.contains("`userId` is 2002 bytes long") && reason.contains("2000 bytes"), "{reason}");
    }
}
