//! Reading declared SELECTs: what is found, what is refused and where.

use super::*;

fn ok(sql: &str) -> Reading {
    read(sql, None).unwrap_or_else(|p| panic!("{sql}: {p}"))
}

fn refused_incremental(sql: &str) -> String {
    let reading = ok(sql);
    reading.not_incremental.unwrap_or_else(|| panic!("{sql}: incremental was accepted")).to_string()
}

const ORDERS: &str = "
SELECT (o.placed_at AT TIME ZONE 'Europe/Paris')::date AS day,
       c.country,
       count(*) AS orders,
       count(DISTINCT o.customer_id) AS customers,
       sum(o.total) FILTER (WHERE o.status = 'paid') AS paid
FROM Shop.Orders AS o
JOIN shop.customers c ON c.id = o.customer_id
GROUP BY 1, c.country";

#[test]
fn a_select_gives_its_key_day_fact_table_and_joins() {
    let reading = ok(ORDERS);
    assert_eq!(reading.key, ["day", "country"]);
    assert_eq!(reading.columns, ["day", "country", "orders", "customers", "paid"]);
    assert_eq!(reading.day, Day { alias: "o".into(), column: "placed_at".into(), zone: Some("Europe/Paris".into()) });
    assert_eq!(reading.fact, "shop.orders", "unquoted names are lower-cased, as PostgreSQL reads them");
    assert_eq!(
        reading.joins,
        [Join { table: "shop.customers".into(), column: "id".into(), fact_column: "customer_id".into() }]
    );
    assert_eq!(reading.not_incremental, None);
}

#[test]
fn unqualified_tables_are_read_in_public_and_a_date_column_is_a_day() {
    let reading =
        ok("SELECT t.day, t.kind, count(*) AS n FROM tracks t LEFT JOIN kinds USING (kind) GROUP BY t.day, t.kind");
    assert_eq!(reading.fact, "public.tracks");
    assert_eq!(reading.day.zone, None);
    assert_eq!(reading.joins[0].table, "public.kinds");
    let text = reading.query.to_string();
    assert!(text.contains("FROM public.tracks t LEFT JOIN public.kinds"), "{text}");
    let cast = ok("SELECT CAST(d.at AS date) AS day, count(*) AS n FROM d GROUP BY 1");
    assert_eq!((cast.day.alias.as_str(), cast.day.column.as_str()), ("d", "at"));
}

#[test]
fn the_key_may_be_given_and_must_name_columns() {
    let reading = read("SELECT e.day, e.id, e.n FROM app.facts e", Some(&["day".into(), "id".into()])).unwrap();
    assert_eq!(reading.key, ["day", "id"]);
    let err = read("SELECT e.day, e.n FROM app.facts e", Some(&["day".into(), "nope".into()])).unwrap_err();
    assert!(err.message.contains("key column `nope` is not a column of the SELECT (its columns: day, n)"), "{err}");
    let twice = read("SELECT e.day, e.n FROM app.facts e", Some(&["day".into(), "day".into()])).unwrap_err();
    assert!(twice.message.contains("key column `day` is listed twice"), "{twice}");
    let err = read("SELECT e.day, e.n FROM app.facts e", None).unwrap_err();
    assert!(err.message.contains("no GROUP BY to take the key from"), "{err}");
}

#[test]
fn what_is_not_one_select_is_refused_with_its_place() {
    let two = read("SELECT 1 AS a; SELECT 2 AS b", None).unwrap_err();
    assert!(two.message.contains("holds 2 statements"), "{two}");
    let delete = read("DELETE FROM app.facts", None).unwrap_err();
    assert!(delete.message.starts_with("is a DELETE statement, not a SELECT"), "{delete}");
    let union = read("SELECT a.day FROM a UNION SELECT b.day FROM b", None).unwrap_err();
    assert!(union.message.contains("not one plain SELECT"), "{union}");
    let syntax = read("SELEC day FROM x", None).unwrap_err();
    assert!(syntax.message.contains("is not SQL that tally can read"), "{syntax}");
    let not_a_day =
        read("SELECT\n  count(*) AS n, e.kind FROM app.e e GROUP BY 2, 1", Some(&["n".into()])).unwrap_err();
    assert_eq!(not_a_day.place, Some((2, 3)), "{not_a_day}");
    assert!(not_a_day.to_string().starts_with("line 2, column 3: the first key column `n` is `count(*)`, not a day"));
    let zone = read("SELECT (e.at AT TIME ZONE 'Mars/Olympus')::date AS day, count(*) AS n FROM e GROUP BY 1", None);
    assert!(zone.unwrap_err().message.contains("`Mars/Olympus` is not an IANA timezone"));
}

#[test]
fn constructs_incremental_mode_cannot_maintain_are_named() {
    let cases = [
        ("SELECT e.day, count(*) AS n FROM e GROUP BY 1 LIMIT 10", "LIMIT/OFFSET"),
        (
            "SELECT e.day, count(*) AS n FROM e JOIN s ON s.started < e.at GROUP BY 1",
            "`public.s` is not joined to the fact table",
        ),
        ("SELECT e.day, count(*) AS n FROM e, s WHERE s.id = e.sid GROUP BY 1", "a comma join"),
        (
            "SELECT e.day, count(*) AS n FROM e JOIN c ON c.id = e.cid JOIN r ON r.id = c.rid GROUP BY 1",
            "`public.r` is not joined to the fact table `public.e`",
        ),
        (
            "SELECT e.day, sum(count(*)) OVER (ORDER BY e.day) AS running FROM e GROUP BY 1",
            "a window over several days",
        ),
        ("SELECT e.day, count(*) AS n FROM e WHERE e.uid IN (SELECT id FROM vip) GROUP BY 1", "a subquery"),
        ("SELECT e.day, count(*) AS n FROM (SELECT * FROM raw) e GROUP BY 1", "is not a table"),
        ("WITH x AS (SELECT * FROM raw) SELECT x.day, count(*) AS n FROM x GROUP BY 1", "a WITH clause"),
        (
            "SELECT e.day, count(*) AS n FROM e FULL JOIN s ON s.id = e.sid GROUP BY 1",
            "not [LEFT] JOIN ... ON an equality",
        ),
    ];
    for (sql, construct) in cases {
        let refusal = refused_incremental(sql);
        assert!(refusal.contains(construct), "{sql}: {refusal}");
        assert!(refusal.contains("use mode = \"concurrently\""), "{refusal}");
    }
    // A window within one day is maintained exactly.
    let by_day =
        ok("SELECT e.day, e.kind, rank() OVER (PARTITION BY e.day ORDER BY count(*)) AS r FROM e GROUP BY 1, 2");
    assert_eq!(by_day.not_incremental, None);
}

#[test]
fn the_scope_is_anded_to_the_where_clause_by_the_parser() {
    let reading =
        ok("SELECT (o.at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM o WHERE o.ok OR o.test GROUP BY 1");
    let declared = Declared { file: "x.sql".into(), reading };
    let scoped = declared.scoped("o.at >= '2026-01-01'");
    assert!(scoped.contains("WHERE (o.ok OR o.test) AND (o.at >= '2026-01-01') GROUP BY 1"), "{scoped}");
    let reading = ok("SELECT o.day, count(*) AS n FROM o GROUP BY 1");
    let declared = Declared { file: "x.sql".into(), reading };
    assert!(declared.scoped("true").contains("FROM public.o WHERE (true) GROUP BY 1"));
}

#[test]
fn names_must_be_plain_identifiers() {
    assert!(check_name("daily_pages").is_ok());
    for bad in ["Daily", "1st", "has space", "pages_live", &"x".repeat(41)] {
        assert!(check_name(bad).is_err(), "{bad}");
    }
}
