//! Reading statements: what each table is filtered, joined and sorted on.

use super::*;

#[test]
fn filters_order_and_joins_are_read_per_table() {
    let tables = read(
        "SELECT * FROM marketing.leads WHERE score = 997 AND status = 'new' \
         AND created_at > now() - interval '7 days' ORDER BY created_at DESC LIMIT 20",
    );
    assert_eq!(tables.len(), 1);
    let leads = &tables[0];
    assert_eq!(leads.name, "marketing.leads");
    assert_eq!(leads.equality, ["score", "status"]);
    assert_eq!(leads.range, ["created_at"]);
    assert_eq!(leads.order, [("created_at".to_string(), true)]);
    assert_eq!(leads.selected, None, "SELECT *");

    let tables = read(
        "SELECT l.email, c.revenue FROM marketing.leads l JOIN marketing.conversions AS c ON c.lead_id = l.id \
         WHERE c.kind = $1 AND c.occurred_at BETWEEN $2 AND $3 ORDER BY c.occurred_at",
    );
    let (leads, conversions) = (&tables[0], &tables[1]);
    assert_eq!(
        (leads.joins.clone(), leads.selected.clone()),
        (vec!["id".to_string()], Some(vec!["email".to_string()]))
    );
    assert_eq!(conversions.joins, ["lead_id"]);
    assert_eq!(conversions.equality, ["kind"]);
    assert_eq!(conversions.range, ["occurred_at"]);
    assert_eq!(conversions.order, [("occurred_at".to_string(), false)]);

    let tables = read("SELECT count(*) FROM marketing.events WHERE properties @> '{\"plan\": \"pro\"}'");
    assert_eq!(tables[0].contains, ["properties"]);
    let tables = read("UPDATE marketing.leads SET score = 1 WHERE email = 'a@b.c'");
    assert_eq!(tables[0].equality, ["email"]);
    assert!(read("not sql at all").is_empty());
    // A function of a column is not a column comparison.
    assert!(read("SELECT * FROM t WHERE lower(email) = 'x'")[0].equality.is_empty());
    // Unquoted names fold to lower case, as PostgreSQL folds them; quoted ones keep theirs.
    let tables = read("SELECT * FROM Marketing.Leads AS L WHERE L.Score = 1 AND \"Mixed\" = 2");
    assert_eq!(
        (tables[0].name.as_str(), tables[0].equality.clone()),
        ("marketing.leads", vec!["score".to_string(), "Mixed".to_string()])
    );
    assert_eq!(read("SELECT * FROM t WHERE \"Mixed\" = 2")[0].equality, ["Mixed"]);
    // ORDER BY an output name or position sorts by the column behind it.
    let by_alias = read("SELECT created_at AS s, email FROM leads WHERE score = 1 ORDER BY s DESC");
    assert_eq!(by_alias[0].order, [("created_at".to_string(), true)]);
    let by_position = read("SELECT email, created_at FROM leads WHERE score = 1 ORDER BY 2");
    assert_eq!(by_position[0].order, [("created_at".to_string(), false)]);
}
