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

#[test]
fn canonical_number_ids_are_the_decimal_text_a_relaxed_export_gives() {
    let canonical = ok(
        r#"{"_id":{"$numberInt":"42"},"userId":{"$numberLong":"9007199254740993"},"session":{"$numberInt":"-7"},"event":"x","timestamp":{"$date":{"$numberLong":"1772532000000"}}}"#,
    );
    assert_eq!(canonical.event_id, "42");
    assert_eq!(canonical.user_id.as_deref(), Some("9007199254740993"), "beyond f64 precision, never through a float");
    assert_eq!(canonical.session_id.as_deref(), Some("-7"));
    let relaxed = ok(
        r#"{"_id":42,"userId":9007199254740993,"session":-7,"event":"x","timestamp":{"$date":"2026-03-03T10:00:00Z"}}"#,
    );
    assert_eq!(
        (&relaxed.event_id, &relaxed.user_id, &relaxed.session_id, relaxed.occurred_at),
        (&canonical.event_id, &canonical.user_id, &canonical.session_id, canonical.occurred_at),
        "both export formats of one document give one row"
    );
    let long = ok(r#"{"_id":{"$numberLong":"-9223372036854775808"},"event":"x","timestamp":"2026-03-03T10:00:00Z"}"#);
    assert_eq!(long.event_id, "-9223372036854775808");
    let decimal =
        ok(r#"{"_id":{"$numberDecimal":"12345678901234567890.10"},"event":"x","timestamp":"2026-03-03T10:00:00Z"}"#);
    assert_eq!(decimal.event_id, "12345678901234567890.10", "digit for digit");
}

#[test]
fn double_ids_keep_the_digits_mongoexport_writes_in_both_formats() {
    // mongoexport writes a double 42 as 42.0 (relaxed) or {"$numberDouble":"42.0"} (canonical).
    // Digits are kept as written; only an exponent's `E` is read as `e`, in both forms alike.
    for (digits, stored) in
        [("42.0", "42.0"), ("0.5", "0.5"), ("-1.25", "-1.25"), ("1E+21", "1e+21"), ("1.5e-7", "1.5e-7")]
    {
        let canonical =
            ok(&format!(r#"{{"_id":{{"$numberDouble":"{digits}"}},"event":"x","timestamp":"2026-03-03T10:00:00Z"}}"#));
        let relaxed = ok(&format!(r#"{{"_id":{digits},"event":"x","timestamp":"2026-03-03T10:00:00Z"}}"#));
        assert_eq!(canonical.event_id, stored);
        assert_eq!(relaxed.event_id, stored, "a plain JSON number id gives the same text");
    }
}

#[test]
fn uuid_ids_in_every_extended_json_form_are_lowercase_hyphenated_text() {
    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    for user_id in [
        r#"{"$binary":{"base64":"D4+tW9nLRp+hZXCGdyiVDg==","subType":"04"}}"#,
        r#"{"$binary":{"base64":"D4+tW9nLRp+hZXCGdyiVDg==","subType":"4"}}"#,
        r#"{"$binary":{"subType":"03","base64":"D4+tW9nLRp+hZXCGdyiVDg=="}}"#,
        r#"{"$binary":"D4+tW9nLRp+hZXCGdyiVDg==","$type":"04"}"#,
        r#"{"$type":"03","$binary":"D4+tW9nLRp+hZXCGdyiVDg=="}"#,
        r#"{"$uuid":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
        r#"{"$uuid":"0F8FAD5B-D9CB-469F-A165-70867728950E"}"#,
    ] {
        let row = ok(&format!(
            r#"{{"_id":{user_id},"userId":{user_id},"session":{user_id},"event":"x","timestamp":"2026-03-03T10:00:00Z"}}"#
        ));
        assert_eq!(row.event_id, uuid, "{user_id}");
        assert_eq!(row.user_id.as_deref(), Some(uuid), "{user_id}");
        assert_eq!(row.session_id.as_deref(), Some(uuid), "{user_id}");
    }
}

#[test]
fn canonical_dates_of_any_epoch_are_timestamps() {
    let row = ok(r#"{"event":"x","timestamp":{"$date":{"$numberLong":"-86400001"}}}"#);
    assert_eq!(row.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "1969-12-30T23:59:59.999Z");
    let row = ok(r#"{"event":"x","timestamp":{"$date":{"$numberLong":"253402300799999"}}}"#);
    assert_eq!(row.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "9999-12-31T23:59:59.999Z");
}

#[test]
fn ids_that_cannot_be_ids_are_rejected_with_the_reason() {
    let base = |id: &str| format!(r#"{{"event":"x","timestamp":"2026-03-03T10:00:00Z","userId":{id}}}"#);
    let cases = [
        (r#"{"$numberDouble":"NaN"}"#, "`userId` {\"$numberDouble\":\"NaN\"} is not a finite number"),
        (r#"{"$numberDouble":"Infinity"}"#, "is not a finite number"),
        (r#"{"$numberDouble":"-Infinity"}"#, "is not a finite number"),
        (r#"{"$numberDecimal":"NaN"}"#, "is not a finite number"),
        (r#"{"$numberDouble":"4,5"}"#, "is not a decimal number"),
        (r#"{"$numberInt":"4.5"}"#, "is not a 32-bit integer"),
        (r#"{"$numberInt":"3000000000"}"#, "is not a 32-bit integer"),
        (r#"{"$numberLong":"12abc"}"#, "is not a 64-bit integer"),
        (r#"{"$numberLong":"9223372036854775808"}"#, "is not a 64-bit integer"),
        (r#"{"$numberInt":42}"#, "the number must be written as a string"),
        (r#"{"$binary":{"base64":"AAECAwQFBgcICQoLDA0ODw==","subType":"00"}}"#, "binary subtype 00, not a UUID"),
        (r#"{"$binary":"AAECAwQFBgcICQoLDA0ODw==","$type":"05"}"#, "binary subtype 05, not a UUID"),
        (r#"{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAA","subType":"04"}}"#, "15 bytes; a UUID has 16"),
        (r#"{"$binary":{"base64":"not base64!","subType":"04"}}"#, "is not base64"),
        (r#"{"$binary":{"base64":"AAECAwQFBgcICQoLDA0ODw=="}}"#, "needs `base64` and `subType`"),
        (r#"{"$uuid":"0f8fad5bd9cb469fa16570867728950e"}"#, "is not a UUID"),
        (r#"{"$uuid":"0f8fad5b-d9cb-469f-a165-70867728950g"}"#, "is not a UUID"),
        (r#"{"$numberInt":"1","$numberLong":"1"}"#, "must be a string, a number or an ObjectId, found an object"),
    ];
    for (id, reason) in cases {
        let error = rejected(&base(id));
        assert!(error.contains(reason), "{id}: expected {reason:?}, got {error:?}");
    }
}

#[test]
fn values_postgresql_cannot_store_are_rejected_wherever_they_are() {
    let line = |fields: &str| format!(r#"{{"event":"x","timestamp":"2026-03-03T10:00:00Z",{fields}}}"#);
    let numeric = "a number PostgreSQL cannot store in jsonb";
    let cases = [
        (line(r#""properties":{"v":1e999999}"#), "`properties.v` is 1e+999999, "),
        (line(r#""properties":{"v":{"$numberDouble":"1e999999"}}"#), "`properties.v` is 1e+999999, "),
        (line(r#""properties":{"v":[{"$numberDecimal":"1E+999999"}]}"#), "`properties.v[0]` is 1e+999999, "),
        (line(r#""properties":{"v":{"$numberLong":"-1e-999999"}}"#), "`properties.v` is -1e-999999, "),
        // A top-level field is kept in properties, so it is checked there.
        (line(r#""extra":{"deep":1e131072}"#), "`properties.extra.deep` is 1e+131072, "),
    ];
    for (text, start) in cases {
        let error = rejected(&text);
        assert!(error.starts_with(start) && error.contains(numeric), "{text}: {error}");
    }
    let id = |bytes: usize| "i".repeat(bytes);
    for key in ["_id", "event_id", "userId", "user_id"] {
        let error = rejected(&line(&format!(r#""{key}":"{}""#, id(limits::MAX_ID_BYTES + 1))));
        assert!(error.starts_with(&format!("`{key}` is 2001 bytes long; ids are limited to 2000 bytes")), "{error}");
        ok(&line(&format!(r#""{key}":"{}""#, id(limits::MAX_ID_BYTES))));
    }
    // Session ids are in no index: any length the line allows.
    assert_eq!(ok(&line(&format!(r#""session":"{}""#, id(5000)))).session_id.map(|s| s.len()), Some(5000));
    // What numeric holds is kept, digit for digit.
    let edge = ok(&line(r#""properties":{"big":1e131071,"small":1e-16383,"zero":0e999999}"#));
    assert_eq!(edge.properties, r#"{"big":1e+131071,"small":1e-16383,"zero":0e+999999}"#);
}

#[test]
fn event_names_and_utm_values_fit_the_aggregates_keys() {
    let long = "x".repeat(limits::MAX_LABEL_BYTES + 1);
    for document in [
        format!(r#"{{"event":"{long}","timestamp":"2026-11-20T10:00:00Z"}}"#),
        format!(r#"{{"event":"e","utm_source":"{long}","timestamp":"2026-11-20T10:00:00Z"}}"#),
        format!(r#"{{"event":"e","properties":{{"utm_campaign":"{long}"}},"timestamp":"2026-11-20T10:00:00Z"}}"#),
    ] {
        let error = parse(1, document.as_bytes()).unwrap_err();
        assert!(error.contains("limited to 500 bytes"), "{error}");
    }
    let fits = "x".repeat(limits::MAX_LABEL_BYTES);
    let document = format!(r#"{{"event":"{fits}","utm_source":"{fits}","timestamp":"2026-11-20T10:00:00Z"}}"#);
    assert!(parse(1, document.as_bytes()).is_ok());
}
