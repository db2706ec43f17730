//! Random write workloads over the marketing tables, for the differential
//! tests of incremental mode: inserts across many days (some months old),
//! updates that move rows to other days or change what a row means, deletes,
//! lead and conversion changes, and the occasional partition TRUNCATE.
//! Deterministic for a seed.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sqlx::PgPool;

/// The newest instant of generated data: 2026-11-25 12:00 UTC.
pub const ANCHOR: &str = "2026-11-25 12:00:00+00";

/// A seeded source of random operations.
pub struct Workload {
    rng: StdRng,
    next_lead: u64,
}

impl Workload {
    pub fn new(seed: u64) -> Workload {
        Workload { rng: StdRng::seed_from_u64(seed), next_lead: seed * 1_000_000 }
    }

    /// Applies `operations` random operations. With `tolerant`, a failing
    /// operation (a deadlock with a concurrent writer) is skipped: it rolled
    /// back as a whole.
    pub async fn apply(&mut self, pool: &PgPool, operations: usize, tolerant: bool) {
        for _ in 0..operations {
            let sql = self.operation();
            let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(pool).await;
            if let Err(e) = result
                && !tolerant
            {
                panic!("workload statement failed: {e}\n{sql}");
            }
        }
    }

    fn operation(&mut self) -> String {
        match self.rng.random_range(0..100) {
            0..=34 => self.insert_events(),
            35..=44 => self.move_events(),
            45..=52 => self.retag_events(),
            53..=59 => self.delete_events(),
            60..=69 => self.insert_lead(),
            70..=76 => self.update_leads(),
            77..=88 => self.insert_conversion(),
            89..=93 => self.update_conversions(),
            94..=95 => "DELETE FROM marketing.conversions WHERE id IN (SELECT id FROM marketing.conversions ORDER BY id DESC LIMIT 1)".to_string(),
            96..=97 => self.spend(),
            _ => self.truncate_or_late(),
        }
    }

    fn user(&mut self) -> String {
        format!("'u{}'", self.rng.random_range(0..25))
    }

    fn utm(&mut self) -> (&'static str, &'static str) {
        match self.rng.random_range(0..5) {
            0 => ("'google'", "'brand'"),
            1 => ("'google'", "'generic'"),
            2 => ("'facebook'", "'spring'"),
            3 if self.rng.random_bool(0.5) => ("'facebook'", "'brand'"),
            3 => ("''", "NULL"),
            _ => ("NULL", "NULL"),
        }
    }

    /// A timestamp within the last 150 days, as SQL.
    fn at(&mut self) -> String {
        let minutes = self.rng.random_range(0..150 * 24 * 60);
        format!("('{ANCHOR}'::timestamptz - interval '{minutes} minutes')")
    }

    fn insert_events(&mut self) -> String {
        // Mostly small statements (keyed marks, at most KEYED_MARK_ROWS rows), sometimes a batch.
        let count =
            if self.rng.random_bool(0.15) { self.rng.random_range(65..90) } else { self.rng.random_range(1..30) };
        let rows: Vec<String> = (0..count)
            .map(|_| {
                let (source, campaign) = self.utm();
                let event = ["'page_view'", "'page_view'", "'signup'", "'purchase'"][self.rng.random_range(0..4)];
                let properties = [
                    "'{\"revenue\": 19.99}'",
                    "'{\"revenue\": \"12.00\"}'",
                    "'{\"revenue\": {\"amount\": 5}}'",
                    "'{\"revenue\": null}'",
                    "'{}'",
                    "'{\"revenue\": 250}'",
                ][self.rng.random_range(0..6)];
                let session = format!("'s{}'", self.rng.random_range(0..60));
                let user = if self.rng.random_bool(0.1) { "NULL".to_string() } else { self.user() };
                format!("({user}, {session}, {event}, {properties}, {source}, 'cpc', {campaign}, {})", self.at())
            })
            .collect();
        format!(
            "INSERT INTO marketing.events (user_id, session_id, event, properties, utm_source, utm_medium, utm_campaign, occurred_at) VALUES {}",
            rows.join(", ")
        )
    }

    fn pick(&mut self, table: &str) -> String {
        let modulus = self.rng.random_range(2..9);
        let remainder = self.rng.random_range(0..modulus);
        format!(
            "(SELECT id FROM marketing.{table} WHERE id % {modulus} = {remainder} ORDER BY id LIMIT {})",
            self.rng.random_range(1..6)
        )
    }

    fn move_events(&mut self) -> String {
        let hours: i64 = self.rng.random_range(-24 * 40..24 * 40);
        format!(
            "UPDATE marketing.events SET occurred_at = least(occurred_at + interval '{hours} hours', '{ANCHOR}'::timestamptz) WHERE id IN {}",
            self.pick("events")
        )
    }

    fn retag_events(&mut self) -> String {
        let (source, campaign) = self.utm();
        let user = self.user();
        format!(
            "UPDATE marketing.events SET utm_source = {source}, utm_campaign = {campaign}, user_id = {user} WHERE id IN {}",
            self.pick("events")
        )
    }

    fn delete_events(&mut self) -> String {
        format!("DELETE FROM marketing.events WHERE id IN {}", self.pick("events"))
    }

    fn insert_lead(&mut self) -> String {
        self.next_lead += 1;
        let (source, campaign) = self.utm();
        let user = if self.rng.random_bool(0.15) { "NULL".to_string() } else { self.user() };
        let status = ["'new'", "'contacted'", "'qualified'", "'converted'", "'lost'"][self.rng.random_range(0..5)];
        let (lead, score, at) = (self.next_lead, self.rng.random_range(0..100), self.at());
        format!(
            "INSERT INTO marketing.leads (email, source, campaign, user_id, status, score, created_at)
             VALUES ('lead-{lead}@example.com', {source}, {campaign}, {user}, {status}, {score}, {at}) ON CONFLICT (email) DO NOTHING"
        )
    }

    fn update_leads(&mut self) -> String {
        let (source, campaign) = self.utm();
        let user = self.user();
        let status = ["'qualified'", "'converted'", "'lost'"][self.rng.random_range(0..3)];
        let lead = "(SELECT id FROM marketing.leads ORDER BY md5(id::text) LIMIT 1)";
        match self.rng.random_range(0..3) {
            0 => format!("UPDATE marketing.leads SET status = {status}, score = score + 7 WHERE id IN {lead}"),
            1 => format!("UPDATE marketing.leads SET source = {source}, campaign = {campaign} WHERE id IN {lead}"),
            _ => format!(
                "UPDATE marketing.leads SET user_id = {user}, created_at = created_at - interval '3 days' WHERE id IN {lead}"
            ),
        }
    }

    fn insert_conversion(&mut self) -> String {
        let kind = ["'signup'", "'purchase'"][self.rng.random_range(0..2)];
        let revenue = self.rng.random_range(0..50_000) as f64 / 100.0;
        let (at, salt) = (self.at(), self.rng.random_range(0..1000));
        format!(
            "INSERT INTO marketing.conversions (lead_id, kind, revenue, occurred_at)
             SELECT id, {kind}, {revenue}, {at} FROM marketing.leads ORDER BY md5(id::text || '{salt}') LIMIT 1"
        )
    }

    fn update_conversions(&mut self) -> String {
        let hours: i64 = self.rng.random_range(-24 * 20..24 * 20);
        format!(
            "UPDATE marketing.conversions SET occurred_at = least(occurred_at + interval '{hours} hours', '{ANCHOR}'::timestamptz),
             revenue = revenue + 1 WHERE id IN {}",
            self.pick("conversions")
        )
    }

    /// Spend reported, corrected, or withdrawn for a day.
    fn spend(&mut self) -> String {
        let day = format!("('{ANCHOR}'::date - {})", self.rng.random_range(0..150));
        let (source, campaign) = [("google", "brand"), ("facebook", "spring")][self.rng.random_range(0..2)];
        match self.rng.random_range(0..3) {
            0 => format!(
                "INSERT INTO marketing.campaign_spend (day, utm_source, utm_campaign, spend, impressions, clicks)
                 VALUES ({day}, '{source}', '{campaign}', {}, 1000, 40)
                 ON CONFLICT (day, utm_source, utm_campaign) DO UPDATE SET spend = excluded.spend",
                self.rng.random_range(1..500)
            ),
            1 => format!(
                "UPDATE marketing.campaign_spend AS s SET day = s.day - 1 WHERE s.day = {day} AND s.utm_source = '{source}'
                 AND NOT EXISTS (SELECT 1 FROM marketing.campaign_spend AS t
                                 WHERE t.day = s.day - 1 AND t.utm_source = s.utm_source AND t.utm_campaign = s.utm_campaign)"
            ),
            _ => format!("DELETE FROM marketing.campaign_spend WHERE day = {day}"),
        }
    }

    fn truncate_or_late(&mut self) -> String {
        if self.rng.random_bool(0.3) {
            // A whole month disappears (only a monthly partition, never the parent).
            "TRUNCATE marketing.events_p2026_08".to_string()
        } else {
            // Late data: a batch of events a year old.
            let minutes = self.rng.random_range(0..30 * 24 * 60);
            let user = self.user();
            format!(
                "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at)
                 VALUES ({user}, 'page_view', 'newsletter', 'nov', '{ANCHOR}'::timestamptz - interval '365 days' - interval '{minutes} minutes')"
            )
        }
    }
}
