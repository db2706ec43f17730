//! Property tests of the ingest parser: no input makes it panic, every
//! rejection says why, and hostile values come through as data, unchanged.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::document::parse;
use super::load::copy_text;

/// Any JSON value, nested up to a few levels, with keys the parser looks at.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("event".to_string()),
        Just("timestamp".to_string()),
        Just("properties".to_string()),
        Just("_id".to_string()),
        Just("userId".to_string()),
        Just("$date".to_string()),
        Just("$oid".to_string()),
        Just("$numberLong".to_string()),
        Just("$numberDecimal".to_string()),
        Just("$numberInt".to_string()),
        Just("$numberDouble".to_string()),
        Just("$binary".to_string()),
        Just("$type".to_string()),
        Just("$uuid".to_string()),
        Just("base64".to_string()),
        Just("subType".to_string()),
        Just("session".to_string()),
        Just("utm_source".to_string()),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(Value::from("2026-03-03T10:00:00Z")),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Reads one COPY text field back (the inverse of the escaping `copy_text` does).
fn unescape(field: &str) -> Option<String> {
    if field == "\\N" {
        return None;
    }
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => panic!("unexpected escape \\{other} in {field:?}"),
            None => panic!("dangling backslash in {field:?}"),
        }
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_parsed_or_rejected_with_a_reason(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Err(reason) = parse(1, &bytes) {
            prop_assert!(!reason.is_empty());
        }
    }

    #[test]
    fn arbitrary_json_documents_are_parsed_or_rejected_with_a_reason(value in json_value()) {
        let line = serde_json::to_vec(&value).unwrap();
        match parse(7, &line) {
            Ok(row) => {
                prop_assert_eq!(row.line, 7);
                prop_assert!(!row.event.trim().is_empty());
                // The row fits PostgreSQL: properties is a JSON object, the time is in range.
                let properties: Value = serde_json::from_str(&row.properties).unwrap();
                prop_assert!(properties.is_object());
                prop_assert!((1..=9999).contains(&chrono::Datelike::year(&row.occurred_at)));
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn hostile_strings_are_kept_as_data_through_copy(
        event in "\\PC{1,40}",
        user in any::<String>(),
        campaign in any::<String>(),
        source in prop_oneof![Just("'; DROP TABLE marketing.events; --".to_string()), any::<String>()],
    ) {
        let document = json!({
            "event": event, "userId": user, "timestamp": "2026-03-03T10:00:00Z",
            "properties": {"utm_source": source, "utm_campaign": campaign, "note": "tab\there\nnewline \\ backslash"}
        });
        let line = serde_json::to_vec(&document).unwrap();
        let has_nul = [&event, &user, &campaign, &source].iter().any(|s| s.contains('\0'));
        match parse(1, &line) {
            Err(reason) => {
                prop_assert!(has_nul || event.trim().is_empty(), "rejected: {}", reason);
                if has_nul {
                    prop_assert!(reason.contains("NUL"), "{}", reason);
                }
            }
            Ok(row) => {
                prop_assert!(!has_nul);
                prop_assert_eq!(&row.event, &event);
                prop_assert_eq!(row.user_id.as_deref(), Some(user.as_str()));
                prop_assert_eq!(row.utm_source.as_deref(), Some(source.as_str()));
                prop_assert_eq!(row.utm_campaign.as_deref(), Some(campaign.as_str()));
                // One line of COPY text, whose fields read back to the same values.
                let text = String::from_utf8(copy_text(std::slice::from_ref(&row))).unwrap();
                prop_assert_eq!(text.matches('\n').count(), 1);
                let fields: Vec<&str> = text.trim_end_matches('\n').split('\t').collect();
                prop_assert_eq!(fields.len(), 9);
                prop_assert_eq!(unescape(fields[2]), Some(event.clone()));
                prop_assert_eq!(unescape(fields[1]), Some(user.clone()));
                prop_assert_eq!(unescape(fields[5]), Some(source.clone()));
                prop_assert_eq!(unescape(fields[7]), Some(campaign.clone()));
                let properties: Value = serde_json::from_str(&unescape(fields[3]).unwrap()).unwrap();
                prop_assert_eq!(&properties["note"], &json!("tab\there\nnewline \\ backslash"));
            }
        }
    }
}

#[test]
fn timestamps_outside_what_postgresql_stores_are_rejected() {
    for timestamp in [
        json!(316_600_000_000_000i64),
        json!({"$date": {"$numberLong": "-65300000000000"}}),
        json!("0000-06-01T00:00:00Z"),
    ] {
        let line = serde_json::to_vec(&json!({"event": "page_view", "timestamp": timestamp})).unwrap();
        let reason = parse(1, &line).expect_err("out of range");
        assert!(reason.contains("unparsable `timestamp`") && reason.contains("in the years 1 to 9999"), "{reason}");
    }
}
