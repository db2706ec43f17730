//! The per-campaign report `tally demo` prints, read from the aggregates.

use sqlx::PgPool;

#[derive(sqlx::FromRow)]
struct CampaignLine {
    utm_source: String,
    utm_campaign: String,
    page_views: i64,
    signups: i64,
    purchases: i64,
    revenue: f64,
    spend: f64,
}

/// Totals per source and campaign over everything in
/// `reporting.daily_campaign_metrics`, with spend and ROAS.
pub async fn campaign_report(pool: &PgPool) -> Result<String, sqlx::Error> {
    let lines: Vec<CampaignLine> = sqlx::query_as(
        "SELECT m.utm_source, m.utm_campaign,
                sum(m.page_views)::bigint AS page_views, sum(m.signups)::bigint AS signups,
                sum(m.purchases)::bigint AS purchases, sum(m.revenue)::float8 AS revenue,
                coalesce(max(s.spend), 0)::float8 AS spend
         FROM reporting.daily_campaign_metrics AS m
         LEFT JOIN (SELECT utm_source, utm_campaign, sum(spend) AS spend
                    FROM marketing.campaign_spend GROUP BY 1, 2) AS s
           ON s.utm_source = m.utm_source AND s.utm_campaign = m.utm_campaign
         GROUP BY m.utm_source, m.utm_campaign
         ORDER BY revenue DESC, m.utm_source, m.utm_campaign",
    )
    .fetch_all(pool)
    .await?;
    let mut out = format!(
        "{:<12} {:<16} {:>10} {:>8} {:>9} {:>12} {:>10} {:>6}\n",
        "source", "campaign", "page_views", "signups", "purchases", "revenue", "spend", "roas"
    );
    for l in &lines {
        let roas = if l.spend > 0.0 { format!("{:.2}", l.revenue / l.spend) } else { "-".to_string() };
        out.push_str(&format!(
            "{:<12} {:<16} {:>10} {:>8} {:>9} {:>12.2} {:>10.2} {:>6}\n",
            l.utm_source, l.utm_campaign, l.page_views, l.signups, l.purchases, l.revenue, l.spend, roas
        ));
    }
    Ok(out)
}
