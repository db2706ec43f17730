//! What tests start from: hand-written events, leads and conversions, the
//! months the workloads write to, NDJSON files to ingest; and one fact of
//! the schema several files check.

use std::io::Write;
use std::path::{Path, PathBuf};

use sqlx::PgPool;
use tally::partitions::{self, ManagedTable, Month};

use super::config;

/// Hand-written events whose aggregates are worked out in the assertions.
pub async fn insert_sample_events(pool: &PgPool) {
    sqlx::query(
        r#"INSERT INTO marketing.events (user_id, session_id, event, properties, utm_source, utm_medium, utm_campaign, occurred_at) VALUES
        ('u1', 's1', 'page_view', '{"url": "/"}',                'google', 'cpc', 'brand', '2026-11-20 10:00+00'),
        ('u1', 's1', 'page_view', '{"url": "/pricing"}',         'google', 'cpc', 'brand', '2026-11-20 10:05+00'),
        ('u2', 's2', 'signup',    '{}',                          'google', 'cpc', 'brand', '2026-11-20 11:00+00'),
        ('u2', 's2', 'purchase',  '{"revenue": 49.90}',          'google', 'cpc', 'brand', '2026-11-20 11:10+00'),
        ('u3', 's3', 'purchase',  '{"revenue": "12.00"}',        'google', 'cpc', 'brand', '2026-11-20 12:00+00'),
        ('u3', 's3', 'purchase',  '{"revenue": {"amount": 5}}',  'google', 'cpc', 'brand', '2026-11-20 12:01+00'),
        ('u4', 's4', 'purchase',  '{"revenue": null}',           'google', 'cpc', 'brand', '2026-11-20 13:00+00'),
        ('u4', 's4', 'purchase',  '{}',                          'google', 'cpc', 'brand', '2026-11-20 13:01+00'),
        ('u5', 's5', 'page_view', '{}',                          NULL,     NULL,  NULL,    '2026-11-20 14:00+00'),
        ('u6', 's6', 'page_view', '{}',                          '',       NULL,  NULL,    '2026-11-20 15:00+00'),
        (NULL, NULL, 'page_view', '{}',                          NULL,     NULL,  NULL,    '2026-11-20 16:00+00'),
        ('u1', 's7', 'page_view', '{}',                          'google', 'cpc', 'brand', '2026-11-21 00:30+00')"#,
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Inserts a lead; returns its id.
pub async fn lead(
    pool: &PgPool,
    email: &str,
    user: Option<&str>,
    source: Option<&str>,
    campaign: Option<&str>,
) -> String {
    sqlx::query_scalar(
        "INSERT INTO marketing.leads (email, user_id, source, campaign) VALUES ($1, $2, $3, $4) RETURNING id::text",
    )
    .bind(email)
    .bind(user)
    .bind(source)
    .bind(campaign)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Inserts a conversion of `lead`.
pub async fn conversion(pool: &PgPool, lead: &str, kind: &str, revenue: &str, at: &str) {
    sqlx::query("INSERT INTO marketing.conversions (lead_id, kind, revenue, occurred_at) VALUES ($1::uuid, $2, $3::numeric, $4::timestamptz)")
        .bind(lead)
        .bind(kind)
        .bind(revenue)
        .bind(at)
        .execute(pool)
        .await
        .unwrap();
}

/// Monthly partitions from 2026-05 to 2027-02, so the workloads' months exist.
pub async fn create_months(pool: &PgPool) {
    let months: Vec<Month> = (0..10).map(|n| Month::new(2026, 5).unwrap().plus(n)).collect();
    partitions::create_months(pool, &config(""), &ManagedTable::events(), &months).await.unwrap();
}

/// A file of `lines` valid, distinct documents, `pad` bytes of properties each.
pub fn generated(dir: &Path, lines: usize, pad: usize) -> PathBuf {
    let path = dir.join("big.ndjson");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let padding = "x".repeat(pad);
    for i in 0..lines {
        writeln!(
            out,
            r#"{{"_id":"g-{i}","userId":"u{}","event":"page_view","properties":{{"pad":"{padding}"}},"timestamp":"2026-11-{:02}T10:00:00Z"}}"#,
            i % 1000,
            1 + i % 25
        )
        .unwrap();
    }
    out.flush().unwrap();
    path
}

/// Whether `leads_created_at_idx` (built CONCURRENTLY by a migration) is
/// valid; `None` while it does not exist.
pub async fn index_state(pool: &PgPool) -> Option<bool> {
    sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE c.relname = 'leads_created_at_idx'",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
}
