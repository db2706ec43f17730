//! The accepted shapes and every rejection reason.

use super::*;

fn ok(text: &str) -> Row {
    parse(7, text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn rejected(text: &str) -> String {
    parse(7, text.as_bytes()).expect_err(text)
}

#[test]
fn the_briefs_document_in_plain_json() {
    let row = ok(
        r#"{"_id": "e1", "userId": "u42", "event": "page_view", "properties": {"url": "/pricing", "referrer": "google", "utm_source": "google", "utm_campaign": "brand"}, "session": "sess_abc123", "timestamp": "2026-03-03T10:00:00Z"}"#,
    );
    assert_eq!(row.line, 7);
    assert_eq!(row.event_id, "e1");
    assert_eq!(row.user_id.as_deref(), Some("u42"));
    assert_eq!(row.event, "page_view");
    assert_eq!(row.session_id.as_deref(), Some("sess_abc123"));
    assert_eq!(row.utm_source.as_deref(), Some("google"));
    assert_eq!(row.utm_medium, None);
    assert_eq!(row.utm_campaign.as_deref(), Some("brand"));
    assert_eq!(row.occurred_at.to_rfc3339(), "2026-03-03T10:00:00+00:00");
    let properties: serde_json::Value = serde_json::from_str(&row.properties).unwrap();
    assert_eq!(properties["url"], "/pricing");
    assert_eq!(properties["utm_source"], "google", "properties are kept whole");
}

#[test]
fn mongoexport_relaxed_extended_json() {
    let row = ok(
        r#"{"_id":{"$oid":"65f1a2b3c4d5e6f708192a3b"},"userId":{"$oid":"64aaaaaaaaaaaaaaaaaaaaaa"},"event":"purchase","properties":{"revenue":{"$numberDecimal":"1234.5678901234567890123"},"items":3,"at":{"$date":"2026-03-03T10:05:00.123Z"}},"session":"s1","timestamp":{"$date":"2026-03-03T10:00:00.000Z"}}"#,
    );
    assert_eq!(row.event_id, "65f1a2b3c4d5e6f708192a3b");
    assert_eq!(row.user_id.as_deref(), Some("64aaaaaaaaaaaaaaaaaaaaaa"));
    assert!(
        row.properties.contains(r#""revenue":1234.5678901234567890123"#),
        "decimals stay exact: {}",
        row.properties
    );
    assert!(row.properties.contains(r#""items":3"#));
    assert!(row.properties.contains(r#""at":"2026-03-03T10:05:00.123Z""#), "{}", row.properties);
    assert_eq!(row.occurred_at.timestamp_millis(), 1_772_532_000_000);
}

#[test]
fn mongoexport_canonical_extended_json() {
    let row = ok(
        r#"{"_id":{"$oid":"65f1a2b3c4d5e6f708192a3b"},"event":"signup","properties":{"n":{"$numberInt":"5"},"big":{"$numberLong":"9007199254740993"},"ratio":{"$numberDouble":"0.1"},"bad":{"$numberDouble":"NaN"},"nested":[{"$numberDecimal":"10.00"}]},"timestamp":{"$date":{"$numberLong":"1772532000000"}}}"#,
    );
    assert_eq!(row.occurred_at.to_rfc3339(), "2026-03-03T10:00:00+00:00");
    assert!(row.properties.contains(r#""n":5"#), "{}", row.properties);
    assert!(
        row.properties.contains(r#""big":9007199254740993"#),
        "beyond f64 precision, still exact: {}",
        row.properties
    );
    assert!(row.properties.contains(r#""ratio":0.1"#));
    assert!(row.properties.contains(r#""bad":"NaN""#), "JSON has no NaN: kept as a string");
    assert!(row.properties.contains(r#""nested":[10.00]"#), "{}", row.properties);
}

#[test]
fn tallys_own_column_names_and_top_level_utms() {
    let row = ok(
        r#"{"event_id":"x-1","user_id":"u","event":"page_view","session_id":"s","utm_source":"newsletter","utm_medium":"email","utm_campaign":"nov","occurred_at":"2026-11-20 09:00:00+01:00","properties":{"utm_source":"ignored"}}"#,
    );
    assert_eq!(row.event_id, "x-1");
    assert_eq!(row.utm_source.as_deref(), Some("newsletter"), "top-level utm fields win");
    assert_eq!(row.utm_medium.as_deref(), Some("email"));
    assert_eq!(row.occurred_at.to_rfc3339(), "2026-11-20T08:00:00+00:00");
}

#[test]
fn epoch_milliseconds_numbers_as_ids_and_extra_fields() {
    let row =
        ok(r#"{"event":"click","timestamp":1772532000000,"userId":12345,"ip":"10.0.0.1","properties":{"ip":"kept"}}"#);
    assert_eq!(row.occurred_at.to_rfc3339(), "2026-03-03T10:00:00+00:00");
    assert_eq!(row.user_id.as_deref(), Some("12345"));
    assert!(row.properties.contains(r#""ip":"kept""#), "properties win over top-level extras");
    let row = ok(r#"{"event":"click","timestamp":1772532000000,"ip":"10.0.0.1"}"#);
    assert!(row.properties.contains(r#""ip":"10.0.0.1""#), "extra top-level fields are kept in properties");
}

#[test]
fn documents_without_an_id_get_a_stable_one() {
    let a = ok(r#"{"event":"page_view","timestamp":"2026-03-03T10:00:00Z"}"#);
    let b = ok(r#"  {"event":"page_view","timestamp":"2026-03-03T10:00:00Z"}  "#);
    let c = ok(r#"{"event":"page_view","timestamp":"2026-03-03T10:00:01Z"}"#);
    assert!(a.event_id.starts_with("sha256:") && a.event_id.len() == 39, "{}", a.event_id);
    assert_eq!(a.event_id, b.event_id);
    assert_ne!(a.event_id, c.event_id);
}

#[test]
fn every_rejection_says_why() {
    let cases = [
        ("", "empty line"),
        ("   ", "empty line"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object but an array"),
        (r#"{"timestamp":"2026-03-03T10:00:00Z"}"#, "no `event`"),
        (r#"{"event":42,"timestamp":"2026-03-03T10:00:00Z"}"#, "`event` must be a non-empty string, found a number"),
        (r#"{"event":"  ","timestamp":"2026-03-03T10:00:00Z"}"#, "`event` must be a non-empty string, found a string"),
        (r#"{"event":"x"}"#, "no timestamp"),
        (r#"{"event":"x","timestamp":"yesterday"}"#, "unparsable `timestamp` \"yesterday\""),
        (r#"{"event":"x","timestamp":true}"#, "unparsable `timestamp` true"),
        (
            r#"{"event":"x","timestamp":"2026-03-03T10:00:00Z","properties":[1]}"#,
            "`properties` must be an object, found an array",
        ),
        (
            r#"{"event":"x","timestamp":"2026-03-03T10:00:00Z","userId":{"name":"bob"}}"#,
            "`userId` must be a string, a number or an ObjectId, found an object",
        ),
        (
            r#"{"event":"x","timestamp":"2026-03-03T10:00:00Z","utm_source":7}"#,
            "`utm_source` must be a string, found a number",
        ),
        (r#"{"event":"x\u0000y","timestamp":"2026-03-03T10:00:00Z"}"#, "NUL character"),
        (r#"{"event":"x","timestamp":"2026-03-03T10:00:00Z","properties":{"a":"\u0000"}}"#, "NUL character"),
    ];
    for (text, reason) in cases {
        let error = rejected(text);
        assert!(error.contains(reason), "{text:?}: expected {reason:?}, got {error:?}");
    }
}
