# syntax=docker/dockerfile:1
# tally: a multi-stage build. The first stage compiles the dependencies alone
# (cached until Cargo.toml or Cargo.lock change), then tally itself; the
# runtime image is Debian slim with the binary (migrations and aggregate
# definitions are embedded in it), running as a non-root user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first: a stub crate with the real manifest, built once and cached.
COPY Cargo.toml Cargo.lock build.rs sqlx.toml ./
RUN mkdir -p src \
    && echo "fn main() {}" > src/main.rs \
    && echo "" > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY sql ./sql
COPY grafana/dashboards ./grafana/dashboards
# Touch so cargo rebuilds tally itself over the stub.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tally \
    && useradd --system --uid 10001 --gid tally --home-dir /nonexistent --shell /usr/sbin/nologin tally
COPY --from=build /src/target/release/tally /usr/local/bin/tally
# The migrations are embedded in the binary; a copy is kept for reference.
COPY sql/migrations /usr/share/tally/migrations
USER 10001:10001
ENV TALLY_METRICS_ADDR=0.0.0.0:9755 \
    TALLY_LOG_FORMAT=json
EXPOSE 9755
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["tally", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tally"]
CMD ["run"]
