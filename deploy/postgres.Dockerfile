# PostgreSQL 15 with postgresql-hll, for tally's visitor sketches
# (visitors_hll; docs/aggregates.md), and hypopg, with which the query
# doctor verifies the indexes it suggests (docs/query-doctor.md). The
# official image ships the PGDG apt repository, which has both for its
# PostgreSQL version.
FROM postgres:15

# The PGDG package follows the server's minor releases; pinning it would
# break the build at the image's next patch release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}-hll" "postgresql-${PG_MAJOR}-hypopg" \
    && rm -rf /var/lib/apt/lists/*
