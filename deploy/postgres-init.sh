#!/bin/sh
# Runs once, when the postgres container initializes an empty data directory:
# creates the role Grafana logs in with (tally's migrations grant it SELECT on
# the reporting schema, see docs/security.md), the hll extension of the
# visitor sketches (tally would create it too: its role is the superuser
# here), and pg_stat_statements for `tally doctor --workload`.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v reader_password="$TALLY_READER_PASSWORD" <<'SQL'
CREATE ROLE tally_reader LOGIN PASSWORD :'reader_password';
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
