//! `tally status`: per aggregate, its mode, freshness, last duration, rows,
//! next run and last error; per partitioned table, the months it covers,
//! future months and rows stuck in the default partition. Text for people,
//! `--json` for scripts.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::aggregates;
use crate::config::Config;
use crate::partitions;
use crate::refresh::history;

/// Everything `tally status` reports.
#[derive(Debug, Serialize)]
pub struct Status {
    pub generated_at: DateTime<Utc>,
    pub aggregates: Vec<AggregateStatus>,
    pub tables: Vec<TableStatus>,
    /// Visitor sketches (`visitors_hll`, postgresql-hll) are on.
    pub sketches: bool,
    /// What tally built in `reporting` for aggregates no longer configured
    /// (a declared one removed from the file): never dropped silently.
    pub leftovers: Vec<Leftover>,
}

/// A relation tally built for an aggregate the configuration no longer has.
#[derive(Debug, Serialize)]
pub struct Leftover {
    /// `reporting.<name>`.
    pub relation: String,
    /// The statement that drops it (and its live view), for the operator to run.
    pub drop: String,
}

/// One aggregate's line.
#[derive(Debug, Serialize)]
pub struct AggregateStatus {
    pub name: String,
    pub mode: String,
    pub enabled: bool,
    pub schedule: String,
    /// The relation exists in `reporting`.
    pub built: bool,
    pub depends_on: Vec<String>,
    pub last_success: Option<DateTime<Utc>>,
    /// Seconds since the start of the last successful refresh.
    pub staleness_seconds: Option<f64>,
    pub last_duration_seconds: Option<f64>,
    pub rows: Option<i64>,
    pub next_run: Option<DateTime<Utc>>,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// One partitioned table's line.
#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub partitions: usize,
    pub first_month: Option<String>,
    pub last_month: Option<String>,
    /// The months covered, as runs of consecutive months (`"2026-11 .. 2027-02"`).
    pub month_ranges: Vec<String>,
    pub future_months: usize,
    pub default_partition_rows: i64,
    /// Why the table could not be read (missing, not range-partitioned).
    pub error: Option<String>,
}

/// Reads the status from the database as of `now`.
pub async fn collect(pool: &PgPool, config: &Config, now: DateTime<Utc>) -> Result<Status, sqlx::Error> {
    let names = config.names();
    let summaries = history::summaries(pool, &names).await?;
    let built: Vec<String> =
        sqlx::query_scalar("SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'reporting'")
            .fetch_all(pool)
            .await?;
    let mut aggregate_lines: Vec<AggregateStatus> = Vec::new();
    for (aggregate, summary) in config.registry().iter().zip(summaries) {
        let built = built.iter().any(|b| b == aggregate.name);
        let depends_on: Vec<String> = aggregate.depends_on.iter().map(|d| d.to_string()).collect();
        let Some(settings) = config.aggregate(aggregate.name) else {
            // A view is as fresh as the stalest aggregate it reads (listed before it).
            let inputs: Vec<&AggregateStatus> =
                aggregate_lines.iter().filter(|line| aggregate.depends_on.contains(&line.name.as_str())).collect();
            let stalest = inputs.iter().map(|line| line.last_success).min().flatten();
            aggregate_lines.push(AggregateStatus {
                name: aggregate.name.to_string(),
                mode: "view".to_string(),
                enabled: true,
                schedule: format!("current with {}", aggregate.depends_on.join(", ")),
                built,
                depends_on,
                last_success: stalest,
                staleness_seconds: inputs.iter().map(|line| line.staleness_seconds).reduce(max_staleness).flatten(),
                last_duration_seconds: None,
                rows: None,
                next_run: None,
                last_outcome: None,
                last_error: None,
                last_error_at: None,
            });
            continue;
        };
        let next_run =
            settings.enabled.then(|| settings.schedule.next_after(now, summary.last_attempt_started)).flatten();
        aggregate_lines.push(AggregateStatus {
            name: aggregate.name.to_string(),
            mode: settings.mode.as_str().to_string(),
            enabled: settings.enabled,
            schedule: settings.schedule.describe(),
            built,
            depends_on,
            last_success: summary.last_success_finished,
            // A clock ahead of this one must not show a negative staleness.
            staleness_seconds: summary
                .last_success_started
                .map(|s| ((now - s).num_milliseconds() as f64 / 1000.0).max(0.0)),
            last_duration_seconds: summary.last_duration_seconds,
            rows: summary.rows,
            next_run,
            last_outcome: summary.last_outcome,
            last_error: summary.last_error,
            last_error_at: summary.last_error_at,
        });
    }
    let today: NaiveDate = now.date_naive();
    let mut tables = Vec::new();
    for table in partitions::managed_tables(config) {
        let line = match partitions::inspect(pool, &table, config.database.lock_timeout.0).await {
            Ok(state) => TableStatus {
                table: table.label(),
                partitions: state.months.len(),
                first_month: state.months.first().map(|m| m.to_string()),
                last_month: state.months.last().map(|m| m.to_string()),
                month_ranges: partitions::month_ranges(&state.months),
                future_months: state.future_months(today),
                default_partition_rows: state.default_row_count(),
                error: None,
            },
            Err(e) => TableStatus {
                table: table.label(),
                partitions: 0,
                first_month: None,
                last_month: None,
                month_ranges: Vec::new(),
                future_months: 0,
                default_partition_rows: 0,
                error: Some(e.reason),
            },
        };
        tables.push(line);
    }
    let sketches = aggregates::Features::detect(&mut *pool.acquire().await?).await?.sketches;
    let leftovers = leftovers(pool, config).await?;
    Ok(Status { generated_at: now, aggregates: aggregate_lines, tables, sketches, leftovers })
}

/// Relations in `reporting` that tally built (their comment is a
/// definition's fingerprint) for no aggregate of `config`; a live view goes
/// with its table.
async fn leftovers(pool: &PgPool, config: &Config) -> Result<Vec<Leftover>, sqlx::Error> {
    let built: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'reporting' AND c.relkind IN ('r', 'm') AND starts_with(obj_description(c.oid, 'pg_class'), $1)
         ORDER BY 1",
    )
    .bind(aggregates::catalog::FINGERPRINT_PREFIX)
    .fetch_all(pool)
    .await?;
    Ok(built
        .into_iter()
        .filter(|(name, _)| config.find(name).is_none())
        .map(|(name, relkind)| {
            let relation = format!("reporting.{}", crate::db::sql::quote_ident_if_needed(&name));
            let kind = if relkind == "m" { "MATERIALIZED VIEW" } else { "TABLE" };
            Leftover { drop: format!("DROP {kind} {relation} CASCADE;"), relation }
        })
        .collect())
}

/// The human-readable form.
pub fn render_text(status: &Status) -> String {
    let mut out = String::from("AGGREGATES\n");
    for a in &status.aggregates {
        let state = match (a.enabled, a.built) {
            (false, _) => "disabled",
            (true, false) => "not built yet",
            (true, true) => "ok",
        };
        out.push_str(&format!("  {} ({}, {}; {})\n", a.name, a.mode, a.schedule, state));
        if !a.depends_on.is_empty() {
            out.push_str(&format!("    reads:        {}\n", a.depends_on.join(", ")));
        }
        if a.mode == "view" {
            out.push_str(&format!("    fresh as of:  {}\n", when(a.last_success)));
            out.push_str(&format!("    staleness:    {}\n", a.staleness_seconds.map_or("-".into(), seconds)));
            continue;
        }
        out.push_str(&format!("    last success: {}\n", when(a.last_success)));
        out.push_str(&format!("    staleness:    {}\n", a.staleness_seconds.map_or("-".into(), seconds)));
        out.push_str(&format!("    duration:     {}\n", a.last_duration_seconds.map_or("-".into(), seconds)));
        out.push_str(&format!("    rows:         {}\n", a.rows.map_or("-".into(), |r| r.to_string())));
        out.push_str(&format!("    next run:     {}\n", when(a.next_run)));
        if let Some(error) = &a.last_error {
            out.push_str(&format!("    last error:   {} ({})\n", error, when(a.last_error_at)));
        }
    }
    if !status.leftovers.is_empty() {
        out.push_str("NO LONGER CONFIGURED (kept; drop them when nothing reads them)\n");
        for leftover in &status.leftovers {
            out.push_str(&format!("  {}: {}\n", leftover.relation, leftover.drop));
        }
    }
    out.push_str("PARTITIONED TABLES\n");
    for t in &status.tables {
        if let Some(error) = &t.error {
            out.push_str(&format!("  {}: {error}\n", t.table));
            continue;
        }
        let covered = match t.month_ranges.is_empty() {
            true => "-".to_string(),
            false => t.month_ranges.join(", "),
        };
        out.push_str(&format!(
            "  {}: {} monthly partitions ({covered}), {} future months, {} rows in the default partition\n",
            t.table, t.partitions, t.future_months, t.default_partition_rows
        ));
    }
    out.push_str(
        "VISITOR SKETCHES
",
    );
    match status.sketches {
        true => out.push_str(
            "  on: visitors over any range = hll_cardinality(hll_union_agg(visitors_hll))
",
        ),
        false => {
            let needing: Vec<&str> = aggregates::REGISTRY.iter().filter(|a| a.needs_sketches).map(|a| a.name).collect();
            out.push_str(&format!("  off: {}\n", aggregates::features::SKETCHES_HINT));
            out.push_str(&format!("  not built until then: {}\n", needing.join(", ")));
        }
    }
    out
}

/// A compact table of the aggregates' freshness (what `demo` prints).
pub fn freshness_table(status: &Status) -> String {
    let mut out = format!(
        "Aggregate freshness\n{:<24} {:<13} {:<21} {:>10} {:>9} {:>8}\n",
        "aggregate", "mode", "last success", "staleness", "duration", "rows"
    );
    for a in &status.aggregates {
        out.push_str(&format!(
            "{:<24} {:<13} {:<21} {:>10} {:>9} {:>8}\n",
            a.name,
            a.mode,
            when(a.last_success).trim_end_matches(" UTC"),
            a.staleness_seconds.map_or("-".into(), seconds),
            a.last_duration_seconds.map_or("-".into(), seconds),
            a.rows.map_or("-".into(), |r| r.to_string())
        ));
    }
    out
}

/// The larger staleness; unknown (never refreshed) counts as infinitely stale.
fn max_staleness(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a?.max(b?))
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or("never".to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn seconds(value: f64) -> String {
    if value.is_infinite() {
        "+Inf".to_string()
    } else if value >= 3600.0 {
        format!("{:.1}h", value / 3600.0)
    } else if value >= 60.0 {
        format!("{:.1}m", value / 60.0)
    } else {
        format!("{value:.2}s")
    }
}
