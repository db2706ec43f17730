-- The foreign schema of `tally bench --declared`: a self-hosted web
-- analytics product's page views, partitioned by month (UTC), with a
-- websites dimension. tally did not design it; aggregates are declared
-- over it as a user would (sql/bench/declared/*.sql).
-- {{first_month}}, {{last_month}}: the months covered, as dates.
CREATE SCHEMA web;
CREATE TABLE web.websites (id integer PRIMARY KEY, owner text NOT NULL);
CREATE TABLE web.pageviews (
    id bigint GENERATED ALWAYS AS IDENTITY,
    website_id integer NOT NULL,
    url_path text NOT NULL,
    referrer text,
    visitor_id uuid NOT NULL,
    ts timestamptz NOT NULL
) PARTITION BY RANGE (ts);
DO $$
DECLARE
    month date := {{first_month}};
BEGIN
    WHILE month <= {{last_month}} LOOP
        EXECUTE format('CREATE TABLE web.%I PARTITION OF web.pageviews FOR VALUES FROM (%L) TO (%L)',
                       'pageviews_' || to_char(month, 'YYYY_MM'), month::timestamp AT TIME ZONE 'UTC',
                       (month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        month := month + interval '1 month';
    END LOOP;
END
$$;
-- Where the writer-cost figures write: a month no aggregate's data reaches.
CREATE TABLE web.pageviews_2100_01 PARTITION OF web.pageviews
    FOR VALUES FROM ('2100-01-01 00:00+00') TO ('2100-02-01 00:00+00');
