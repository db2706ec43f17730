//! The Grafana dashboards shipped in `grafana/dashboards`, embedded, and the
//! expansion of their SQL the way Grafana's PostgreSQL datasource expands it,
//! so tests and `tally bench` run exactly what dashboards will run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Every dashboard file, by name.
pub static DASHBOARDS: &[(&str, &str)] = &[
    ("campaign-performance.json", include_str!("../grafana/dashboards/campaign-performance.json")),
    ("tally-worker.json", include_str!("../grafana/dashboards/tally-worker.json")),
];

/// The uid of the PostgreSQL datasource the dashboards query.
pub const POSTGRES_DATASOURCE: &str = "tally-postgres";

/// One SQL query of a dashboard: a panel target or a template variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    pub dashboard: String,
    /// Panel title, or `variable NAME`.
    pub title: String,
    pub sql: String,
    /// For a variable, its name (its values feed the other queries).
    pub variable: Option<String>,
}

/// The SQL queries of a dashboard, variables first (in their order, since a
/// later variable may use an earlier one), then panels (rows included).
pub fn sql_queries(name: &str, dashboard: &Value) -> Vec<DashboardQuery> {
    let mut queries = Vec::new();
    let variables = dashboard.pointer("/templating/list").and_then(Value::as_array).cloned().unwrap_or_default();
    for variable in variables {
        let on_postgres = variable.pointer("/datasource/uid").and_then(Value::as_str) == Some(POSTGRES_DATASOURCE);
        if let (true, Some(sql), Some(var)) = (on_postgres, variable["query"].as_str(), variable["name"].as_str()) {
            queries.push(DashboardQuery {
                dashboard: name.to_string(),
                title: format!("variable {var}"),
                sql: sql.to_string(),
                variable: Some(var.to_string()),
            });
        }
    }
    let mut panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().cloned().unwrap_or_default());
        for target in panel["targets"].as_array().cloned().unwrap_or_default() {
            let uid =
                target.pointer("/datasource/uid").or_else(|| panel.pointer("/datasource/uid")).and_then(Value::as_str);
            if let (Some(POSTGRES_DATASOURCE), Some(sql)) = (uid, target["rawSql"].as_str()) {
                queries.push(DashboardQuery {
                    dashboard: name.to_string(),
                    title: panel["title"].as_str().unwrap_or("untitled").to_string(),
                    sql: sql.to_string(),
                    variable: None,
                });
            }
        }
    }
    queries
}

/// The current values of a dashboard's custom (constant-list) variables,
/// which no query computes: the starting point of [`expand`]'s variables.
pub fn custom_variables(dashboard: &Value) -> BTreeMap<String, Vec<String>> {
    let variables = dashboard.pointer("/templating/list").and_then(Value::as_array).cloned().unwrap_or_default();
    variables
        .iter()
        .filter(|v| v["type"] == "custom")
        .filter_map(|v| {
            Some((v["name"].as_str()?.to_string(), vec![v.pointer("/current/value")?.as_str()?.to_string()]))
        })
        .collect()
}

/// Expands Grafana's macros and template variables in `sql` for the time
/// range `from`..`to`: `$__timeFilter(col)`, `$__timeFrom()`, `$__timeTo()`,
/// `$__timeGroup(col, interval)`, `$__timeGroupAlias(col, interval)`, and
/// `$name` / `${name}` (a multi-value variable becomes a quoted list), and
/// `${name:raw}` (the values unquoted).
pub fn expand(sql: &str, from: DateTime<Utc>, to: DateTime<Utc>, variables: &BTreeMap<String, Vec<String>>) -> String {
    let literal = |t: DateTime<Utc>| format!("'{}'", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let mut out = sql.replace("$__timeFrom()", &literal(from)).replace("$__timeTo()", &literal(to));
    out = replace_macro(&out, "$__timeFilter", |args| {
        format!("{} BETWEEN {} AND {}", args[0], literal(from), literal(to))
    });
    out = replace_macro(&out, "$__timeGroupAlias", |args| format!("{} AS \"time\"", time_group(args)));
    out = replace_macro(&out, "$__timeGroup", time_group);
    // Longer names first, so `$campaign` is not read as `$camp` + `aign`.
    let mut names: Vec<&String> = variables.keys().collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    for name in names {
        let values = &variables[name];
        // `${name:raw}`: the values as they are (a relation name), comma-separated.
        out = out.replace(&format!("${{{name}:raw}}"), &values.join(","));
        let list = if values.is_empty() {
            "NULL".to_string()
        } else {
            values.iter().map(|v| crate::db::quote_literal(v)).collect::<Vec<_>>().join(",")
        };
        out = out.replace(&format!("${{{name}}}"), &list).replace(&format!("${name}"), &list);
    }
    out
}

fn time_group(args: &[String]) -> String {
    let seconds = args.get(1).and_then(|i| interval_seconds(i)).unwrap_or(86_400);
    format!("floor(extract(epoch from {})/{seconds})*{seconds}", args[0])
}

fn interval_seconds(text: &str) -> Option<u64> {
    let text = text.trim().trim_matches('\'');
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    Some(
        n * match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return None,
        },
    )
}

/// Replaces each `name(args)` call with `render(args)`.
fn replace_macro(sql: &str, name: &str, render: impl Fn(&[String]) -> String) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(start) = rest.find(&format!("{name}(")) {
        out.push_str(&rest[..start]);
        let after = &rest[start + name.len() + 1..];
        let Some(end) = after.find(')') else { break };
        let args: Vec<String> = after[..end].split(',').map(|a| a.trim().to_string()).collect();
        out.push_str(&render(&args));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn macros_and_variables_expand_like_grafana() {
        let from = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let variables = BTreeMap::from([
            ("source".to_string(), vec!["google".to_string(), "o'brien".to_string()]),
            ("campaign".to_string(), vec!["brand".to_string()]),
        ]);
        let sql = "SELECT $__timeGroupAlias(day, 1d), x FROM t WHERE $__timeFilter(day) AND d >= $__timeFrom()::date \
                   AND s IN ($source) AND c IN (${campaign})";
        assert_eq!(
            expand(sql, from, to, &variables),
            "SELECT floor(extract(epoch from day)/86400)*86400 AS \"time\", x FROM t WHERE day BETWEEN '2026-11-01T00:00:00Z' \
             AND '2026-11-25T12:00:00Z' AND d >= '2026-11-01T00:00:00Z'::date AND s IN ('google','o''brien') AND c IN ('brand')"
        );
        let raw = BTreeMap::from([("metrics".to_string(), vec!["daily_campaign_metrics_live".to_string()])]);
        assert_eq!(
            expand("FROM reporting.${metrics:raw} AS m", from, to, &raw),
            "FROM reporting.daily_campaign_metrics_live AS m"
        );
        let campaign: Value = serde_json::from_str(DASHBOARDS[0].1).unwrap();
        assert_eq!(custom_variables(&campaign)["metrics"], ["daily_campaign_metrics"], "the stored table by default");
    }

    #[test]
    fn every_dashboard_parses_and_the_campaign_one_queries_postgres() {
        for (name, text) in DASHBOARDS {
            let dashboard: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(dashboard["uid"].is_string() && dashboard["schemaVersion"].as_u64() >= Some(39), "{name}");
        }
        let campaign: Value = serde_json::from_str(DASHBOARDS[0].1).unwrap();
        let queries = sql_queries("campaign-performance.json", &campaign);
        assert_eq!(queries.iter().filter(|q| q.variable.is_some()).count(), 2);
        assert!(queries.len() >= 12, "{}", queries.len());
    }
}
