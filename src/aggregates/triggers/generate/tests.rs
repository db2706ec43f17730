use super::*;

fn config(toml: &str) -> Config {
    Config::from_toml(toml, std::path::Path::new("t.toml")).unwrap()
}

#[test]
fn no_incremental_aggregate_means_no_trigger() {
    let none = config("");
    assert!(sources(&tracked(&none)).iter().all(|table| generate(&none, &tracked(&none), table).is_none()));
    assert!(!any_incremental(&none));
    assert_eq!(
        sources(&[]),
        ["marketing.events", "marketing.leads", "marketing.conversions", "marketing.campaign_spend"],
        "every table an aggregate reads can carry triggers"
    );
}

#[test]
fn small_updates_record_the_campaigns_of_old_and_new_rows() {
    let campaigns = config("[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n");
    let events = generate(&campaigns, &tracked(&campaigns), "marketing.events").unwrap();
    let update = &events.functions[1];
    assert!(update.contains("(SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows) AS r"), "{update}");
    assert!(update.contains("coalesce(nullif(r.utm_campaign, ''), '(none)') AS key"), "{update}");
    assert!(!update.contains("{{") && !update.contains("--"), "templates fully rendered: {update}");
}

#[test]
fn one_pass_over_inserted_events_marks_every_rule() {
    let both = config(
        "reporting_timezone = \"America/New_York\"\n[aggregates.daily_event_counts]\nmode = \"incremental\"\n\
         [aggregates.daily_attribution]\nmode = \"incremental\"\n",
    );
    let tracked = tracked(&both);
    let events = generate(&both, &tracked, "marketing.events").unwrap();
    assert_eq!(events.triggers.len(), 4);
    let insert = &events.functions[0];
    // A small statement takes the keyed path; a larger one, one pass over its rows.
    let (small, large) = insert.split_once("ELSE").expect("two paths");
    assert!(small.contains("IF (SELECT count(*) FROM (SELECT FROM new_rows LIMIT 65) AS s) <= 64 THEN"), "{small}");
    assert!(small.contains("'daily_event_counts', 'days', dirty.d, dirty.d,"), "{small}");
    assert!(small.contains("array_agg(DISTINCT dirty.key)") && small.contains("r.event AS key"), "{small}");
    assert!(small.contains("'daily_attribution', 'touch_window'"), "{small}");
    assert!(small.contains("array_agg(DISTINCT r.user_id) AS users"), "a small statement's touches name their users");
    assert_eq!(large.matches("INSERT INTO tally.invalidations").count(), 1, "{large}");
    assert!(!large.contains("keys"), "{large}");
    assert!(insert.contains("('daily_event_counts', NULL::text[], 'days', dirty.d, dirty.d)"), "{insert}");
    assert!(insert.contains("'daily_attribution', 'touch_window'"), "{insert}");
    assert!(insert.contains("dirty.last_touch + make_interval(days => 30)"), "the touch window's end: {insert}");
    assert!(insert.contains("AT TIME ZONE 'America/New_York'"), "{insert}");
    assert!(!insert.contains("daily_campaign_metrics"), "only incremental aggregates are marked");
    assert!(!insert.contains("{{") && !insert.contains("--"), "templates fully rendered: {insert}");
    assert!(events.functions.iter().any(|f| f.contains("_truncate_partition()")), "partitions report TRUNCATE");
    let truncate = &events.functions[3];
    assert!(!truncate.contains("IF ") && truncate.contains("'all'"), "{truncate}");
    let leads = generate(&both, &tracked, "marketing.leads").unwrap();
    assert!(leads.functions.iter().all(|f| !f.contains("LIMIT 65")), "no live key on leads: no keyed path");
    let update = &leads.functions[1];
    assert!(update.contains("'join', 'lead_id'"), "a lead's change: a join mark of its id: {update}");
    assert!(
        update.contains("(o.source, o.campaign, o.user_id) IS DISTINCT FROM (n.source, n.campaign, n.user_id)"),
        "{update}"
    );
    assert!(!leads.functions[0].contains("'join'"), "an INSERT of leads changes no conversion's day");
    assert!(generate(&both, &tracked, "marketing.conversions").is_some());
}

#[test]
fn aggregates_with_the_same_day_rule_share_one_mark_per_statement() {
    let dir = tempfile::tempdir().unwrap();
    let select = |measure: &str| {
        format!("SELECT (p.ts AT TIME ZONE 'UTC')::date AS day, p.site, {measure} AS n FROM web.views p GROUP BY 1, 2")
    };
    std::fs::write(dir.path().join("a.sql"), select("count(*)")).unwrap();
    std::fs::write(dir.path().join("b.sql"), select("count(DISTINCT p.visitor)")).unwrap();
    std::fs::write(dir.path().join("c.sql"), select("count(*)").replace("'UTC'", "'Asia/Tokyo'")).unwrap();
    let path = dir.path().join("tally.toml");
    let sections: String = ["a", "b", "c"]
        .iter()
        .map(|n| format!("[aggregates.{n}]\nsql = \"{n}.sql\"\nmode = \"incremental\"\n"))
        .collect();
    std::fs::write(&path, sections).unwrap();
    let config = Config::load(Some(&path)).unwrap();
    let set = generate(&config, &tracked(&config), "web.views").unwrap();
    let insert = &set.functions[0];
    assert!(insert.contains("(NULL::text, ARRAY['a', 'b']::text[], 'days', dirty.d, dirty.d)"), "{insert}");
    assert!(insert.contains("('c', NULL::text[], 'days', dirty.d, dirty.d)"), "another zone, its own mark: {insert}");
    let update = &set.functions[1];
    assert_eq!(update.matches("INSERT INTO tally.invalidations").count(), 2, "{update}");
    assert!(update.contains("SELECT NULL::text, ARRAY['a', 'b']::text[], 'days'"), "{update}");
    let truncate = &set.functions[3];
    assert_eq!(truncate.matches("'all'").count(), 3, "TRUNCATE marks each member: {truncate}");
}
