//! Export formats beyond the everyday ones: a canonical `mongoexport` of a
//! realistic collection (integer, double and ObjectId ids, UUID user ids,
//! every number wrapped), and a file saved with a UTF-8 byte order mark.

use super::{EXTENDED, PLAIN, counts, write};
use crate::harness::{TestDb, tally};

/// `mongoexport --jsonFormat=canonical` of four events: ids of four BSON
/// types, UUIDs (binary subtype 04) as user ids, and dates as epoch milliseconds.
const CANONICAL: [&str; 4] = [
    r#"{"_id":{"$oid":"6734a1b2c3d4e5f601234567"},"userId":{"$binary":{"base64":"D4+tW9nLRp+hZXCGdyiVDg==","subType":"04"}},"event":"page_view","properties":{"url":"/pricing","utm_source":"google","utm_medium":"cpc","utm_campaign":"brand","scroll":{"$numberDouble":"0.75"},"visits":{"$numberInt":"3"}},"session":"sess_1","timestamp":{"$date":{"$numberLong":"1795168800000"}}}"#,
    r#"{"_id":{"$numberInt":"42"},"userId":{"$binary":{"base64":"w6H13nsuTDqdHytuik8MEQ==","subType":"04"}},"event":"purchase","properties":{"revenue":{"$numberDecimal":"49.90"},"items":{"$numberInt":"2"},"order":{"$numberLong":"9007199254740993"},"paidAt":{"$date":{"$numberLong":"1795168860123"}},"utm_campaign":"brand"},"session":{"$numberLong":"9007199254740993"},"timestamp":{"$date":{"$numberLong":"1795168860000"}}}"#,
    r#"{"_id":{"$numberLong":"9007199254740993"},"userId":{"$numberInt":"7"},"event":"signup","properties":{"plan":"pro","trialDays":{"$numberInt":"14"}},"session":{"$numberInt":"12"},"timestamp":{"$date":{"$numberLong":"1795172400000"}}}"#,
    r#"{"_id":{"$numberDouble":"7.0"},"userId":{"$binary":{"base64":"D4+tW9nLRp+hZXCGdyiVDg==","subType":"04"}},"event":"page_view","properties":{"url":"/"},"session":"sess_1","timestamp":{"$date":{"$numberLong":"1795172400500"}}}"#,
];

/// The same four events as plain `mongoexport` (relaxed) writes them.
const RELAXED: [&str; 4] = [
    r#"{"_id":{"$oid":"6734a1b2c3d4e5f601234567"},"userId":{"$binary":{"base64":"D4+tW9nLRp+hZXCGdyiVDg==","subType":"04"}},"event":"page_view","properties":{"url":"/pricing","utm_source":"google","utm_medium":"cpc","utm_campaign":"brand","scroll":0.75,"visits":3},"session":"sess_1","timestamp":{"$date":"2026-11-20T10:00:00Z"}}"#,
    r#"{"_id":42,"userId":{"$binary":{"base64":"w6H13nsuTDqdHytuik8MEQ==","subType":"04"}},"event":"purchase","properties":{"revenue":{"$numberDecimal":"49.90"},"items":2,"order":9007199254740993,"paidAt":{"$date":"2026-11-20T10:01:00.123Z"},"utm_campaign":"brand"},"session":9007199254740993,"timestamp":{"$date":"2026-11-20T10:01:00Z"}}"#,
    r#"{"_id":9007199254740993,"userId":7,"event":"signup","properties":{"plan":"pro","trialDays":14},"session":12,"timestamp":{"$date":"2026-11-20T11:00:00Z"}}"#,
    r#"{"_id":7.0,"userId":{"$binary":{"base64":"D4+tW9nLRp+hZXCGdyiVDg==","subType":"04"}},"event":"page_view","properties":{"url":"/"},"session":"sess_1","timestamp":{"$date":"2026-11-20T11:00:00.500Z"}}"#,
];

type Ids = (String, Option<String>, Option<String>, String, Option<String>);

#[tokio::test]
async fn a_canonical_mongoexport_loads_every_line_and_its_relaxed_twin_adds_nothing() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let canonical = write(dir.path(), "canonical.ndjson", &CANONICAL);
    let out = tally(&["ingest", canonical.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(counts(&out.stdout), (4, 4, 0, 0), "every line loaded");

    let rows: Vec<Ids> = sqlx::query_as(
        "SELECT event_id, user_id, session_id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'),
                utm_campaign
         FROM marketing.events ORDER BY occurred_at",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let uuid_a = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let uuid_b = "c3a1f5de-7b2e-4c3a-9d1f-2b6e8a4f0c11";
    let expected = [
        ("6734a1b2c3d4e5f601234567", Some(uuid_a), Some("sess_1"), "2026-11-20 10:00:00.000", Some("brand")),
        ("42", Some(uuid_b), Some("9007199254740993"), "2026-11-20 10:01:00.000", Some("brand")),
        ("9007199254740993", Some("7"), Some("12"), "2026-11-20 11:00:00.000", None),
        ("7.0", Some(uuid_a), Some("sess_1"), "2026-11-20 11:00:00.500", None),
    ];
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    for (row, want) in rows.iter().zip(expected) {
        assert_eq!(row.0, want.0);
        assert_eq!(row.1.as_deref(), want.1, "user id of {}", want.0);
        assert_eq!(row.2.as_deref(), want.2, "session of {}", want.0);
        assert_eq!(row.3, want.3, "time of {}", want.0);
        assert_eq!(row.4.as_deref(), want.4, "campaign of {}", want.0);
    }

    // Wrapped numbers in properties are real JSON numbers, exact; dates ISO-8601 text.
    let purchase: (String, String, String, String, String) = sqlx::query_as(
        "SELECT properties->>'revenue', jsonb_typeof(properties->'revenue'), properties->>'order',
                properties->>'paidAt', properties->>'items'
         FROM marketing.events WHERE event_id = '42'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        purchase,
        (
            "49.90".to_string(),
            "number".to_string(),
            "9007199254740993".to_string(),
            "2026-11-20T10:01:00.123Z".to_string(),
            "2".to_string()
        )
    );
    let scroll: f64 = sqlx::query_scalar(
        "SELECT (properties->>'scroll')::float8 + (properties->>'visits')::int FROM marketing.events
         WHERE event_id = '6734a1b2c3d4e5f601234567'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(scroll, 3.75);

    // The relaxed export of the same collection is the same events: all duplicates.
    let relaxed = write(dir.path(), "relaxed.ndjson", &RELAXED);
    let again = tally(&["ingest", relaxed.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(counts(&again.stdout), (4, 0, 4, 0), "one id per value, whichever format exported it");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(total, 4);
}

#[tokio::test]
async fn a_byte_order_mark_before_the_first_line_is_dropped() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("saved-on-windows.ndjson");
    std::fs::write(&file, format!("\u{feff}{PLAIN}\r\n{EXTENDED}\r\n")).unwrap();
    let out = tally(&["ingest", file.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(counts(&out.stdout), (2, 2, 0, 0));
    let first: String = sqlx::query_scalar("SELECT event_id FROM marketing.events ORDER BY id LIMIT 1")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(first, "p-1");
}
