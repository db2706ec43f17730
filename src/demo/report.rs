//! What `tally demo` prints: the top campaigns of the last 30 days, read
//! from `reporting.campaign_performance`, with visitors over the 30 days
//! from the visitor sketches (each person once, not once per day).

use sqlx::{AssertSqlSafe, PgPool};

use crate::config::Config;

#[derive(sqlx::FromRow)]
struct CampaignLine {
    utm_source: String,
    utm_campaign: String,
    visitors: i64,
    signups: i64,
    purchases: i64,
    revenue: f64,
    spend: f64,
    cpa: Option<f64>,
    roas: Option<f64>,
}

/// The ten campaigns with the most (first-touch) revenue over the last 30
/// days in the reporting timezone, as a text table.
pub async fn campaign_report(pool: &PgPool, config: &Config) -> Result<String, sqlx::Error> {
    let tz = config.reporting_timezone.sql_literal();
    let sketches = crate::aggregates::Features::detect(&mut *pool.acquire().await?).await?.sketches;
    // Visitors over the 30 days count each person once: the union of the
    // days' sketches, or (without postgresql-hll) the exact count from the events.
    let visitors = match sketches {
        true => format!(
            "SELECT utm_source, utm_campaign, hll_cardinality(hll_union_agg(visitors_hll))::bigint AS visitors
             FROM reporting.daily_campaign_metrics WHERE day > (now() AT TIME ZONE {tz})::date - 30 GROUP BY 1, 2"
        ),
        false => format!(
            "SELECT coalesce(nullif(utm_source, ''), '(none)') AS utm_source,
                    coalesce(nullif(utm_campaign, ''), '(none)') AS utm_campaign, count(DISTINCT user_id) AS visitors
             FROM marketing.events
             WHERE occurred_at >= (((now() AT TIME ZONE {tz})::date - 29)::timestamp AT TIME ZONE {tz}) GROUP BY 1, 2"
        ),
    };
    let lines: Vec<CampaignLine> = sqlx::query_as(AssertSqlSafe(format!(
        // Materialized: computed once, never once per campaign row.
        "WITH visitors AS MATERIALIZED ({visitors})
         SELECT p.utm_source, p.utm_campaign,
                coalesce(max(v.visitors), 0)::bigint AS visitors, sum(signups)::bigint AS signups,
                sum(purchases)::bigint AS purchases, sum(revenue)::float8 AS revenue, sum(spend)::float8 AS spend,
                (sum(spend) / nullif(sum(conversions), 0))::float8 AS cpa,
                (sum(revenue) / nullif(sum(spend), 0))::float8 AS roas
         FROM reporting.campaign_performance AS p
         LEFT JOIN visitors AS v USING (utm_source, utm_campaign)
         WHERE p.day > (now() AT TIME ZONE {tz})::date - 30
         GROUP BY p.utm_source, p.utm_campaign
         ORDER BY revenue DESC, p.utm_source, p.utm_campaign
         LIMIT 10"
    )))
    .fetch_all(pool)
    .await?;
    let mut out = format!(
        "Top campaigns, last 30 days ({}; revenue and CPA by first touch)\n{:<12} {:<16} {:>9} {:>8} {:>9} {:>11} {:>10} {:>8} {:>6}\n",
        config.reporting_timezone.name(),
        "source",
        "campaign",
        "visitors",
        "signups",
        "purchases",
        "revenue",
        "spend",
        "cpa",
        "roas"
    );
    let or_dash = |value: Option<f64>, decimals: usize| value.map_or("-".to_string(), |v| format!("{v:.decimals$}"));
    for l in &lines {
        out.push_str(&format!(
            "{:<12} {:<16} {:>9} {:>8} {:>9} {:>11.2} {:>10.2} {:>8} {:>6}\n",
            l.utm_source,
            l.utm_campaign,
            l.visitors,
            l.signups,
            l.purchases,
            l.revenue,
            l.spend,
            or_dash(l.cpa, 2),
            or_dash(l.roas, 2)
        ));
    }
    Ok(out)
}
