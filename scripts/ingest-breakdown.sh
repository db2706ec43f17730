#!/usr/bin/env bash
# "Where ingest's time goes" in BENCHMARKS.md: the server's part of loading
# 1M events, step by step, with psql, then `tally ingest` of the same events
# as NDJSON. Every COPY reads from psql (\copy, client side), as tally's does.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/ingest_breakdown scripts/ingest-breakdown.sh
#
# The database must exist and be empty (tally migrates it); the month
# 2031-06 of marketing.events is used and emptied between steps. No
# incremental aggregate: no invalidation trigger fires.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL to an empty database}"
TALLY=${TALLY:-target/release/tally}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
psql() { command psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
columns="event_id, user_id, event, properties, session_id, utm_source, utm_medium, utm_campaign, occurred_at"
staging="CREATE TEMP TABLE st (line bigint GENERATED ALWAYS AS IDENTITY, event_id text, user_id text, event text,
  properties jsonb, session_id text, utm_source text, utm_medium text, utm_campaign text, occurred_at timestamptz)"

"$TALLY" migrate >/dev/null
psql -c "CREATE TABLE IF NOT EXISTS marketing.events_p2031_06 PARTITION OF marketing.events
         FOR VALUES FROM ('2031-06-01 00:00:00+00') TO ('2031-07-01 00:00:00+00')"
rows="SELECT 'b-' || g, 'visitor-' || (g % 50000), (ARRAY['page_view', 'signup', 'purchase'])[1 + g % 3],
             jsonb_build_object('url', '/p/' || (g % 100), 'revenue', g % 500), 'session-' || (g / 5),
             'google', 'cpc', 'brand_' || (g % 7), timestamptz '2031-06-01 00:00:00+00' + g * interval '2 seconds'
      FROM generate_series(1, 1000000) AS g"
rows=$(tr '\n' ' ' <<<"$rows")
psql -c "\\copy ($rows) TO '$dir/events.csv' CSV"
documents="SELECT json_build_object('_id', e, 'userId', u, 'event', k, 'session', s,
             'properties', p || jsonb_build_object('utm_source', so, 'utm_medium', m, 'utm_campaign', c),
             'timestamp', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
           FROM ($rows) AS r(e, u, k, p, s, so, m, c, t)"
documents=$(tr '\n' ' ' <<<"$documents")
psql -c "\\copy ($documents) TO '$dir/events.ndjson'"
split -l 10000 -d -a 3 "$dir/events.csv" "$dir/part_"

timed() { # label, then psql arguments
    local label=$1 start
    shift
    psql -c "TRUNCATE marketing.events_p2031_06"
    start=$(date +%s.%N)
    psql "$@" >/dev/null
    printf '| %s | %.2f s |\n' "$label" "$(echo "$(date +%s.%N) - $start" | bc)"
}
batched() { # one transaction per 10,000 rows: $1 is what each does with file :f
    for part in "$dir"/part_*; do printf '%s\n' "${1//:f/$part}"; done
}

echo "| step (1M events) | time |"
echo "|---|---:|"
psql -c "DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (LIKE marketing.events INCLUDING DEFAULTS INCLUDING IDENTITY)"
timed "COPY into a plain table, no index" -c "\\copy bench_raw ($columns) FROM '$dir/events.csv' CSV"
psql -c "DROP TABLE bench_raw; CREATE TABLE bench_raw (LIKE marketing.events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
timed "COPY into a plain table with the 4 indexes (raw COPY)" -c "\\copy bench_raw ($columns) FROM '$dir/events.csv' CSV"
psql -c "DROP TABLE bench_raw"
timed "COPY into marketing.events, one transaction" -c "\\copy marketing.events ($columns) FROM '$dir/events.csv' CSV"
timed "COPY into marketing.events, 100 transactions" \
    -f <(batched "BEGIN; SAVEPOINT a;
\\copy marketing.events ($columns) FROM ':f' CSV
RELEASE a; COMMIT;")
timed "COPY into a staging table only, one transaction" \
    -f <(printf '%s;\n\\copy st (%s) FROM %s CSV\n' "$staging" "$columns" "'$dir/events.csv'")
timed "staging, then INSERT ... ON CONFLICT DO NOTHING, 100 transactions" \
    -f <(printf '%s ON COMMIT DELETE ROWS;\n' "$staging"; batched "BEGIN; SAVEPOINT a;
\\copy st ($columns) FROM ':f' CSV
INSERT INTO marketing.events ($columns) SELECT $columns FROM st ORDER BY line ON CONFLICT DO NOTHING;
RELEASE a; COMMIT;")
psql -c "TRUNCATE marketing.events_p2031_06"
start=$(date +%s.%N)
/usr/bin/time -f '%U' -o "$dir/user" "$TALLY" ingest "$dir/events.ndjson" >/dev/null 2>&1
printf '| `tally ingest` of the same events as NDJSON (its own CPU: %s s) | %.2f s |\n' \
    "$(cat "$dir/user")" "$(echo "$(date +%s.%N) - $start" | bc)"
