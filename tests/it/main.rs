//! Integration tests: every test talks to a real PostgreSQL server, in a
//! database of its own. One binary, so the throwaway cluster (when
//! `DATABASE_URL` is unset) starts once.

mod harness;

mod aggregates;
mod attribution;
mod campaign_performance;
mod cli;
mod dashboards;
mod declared;
mod demo;
mod deploy;
mod doctor;
mod engine;
mod faults;
mod incremental;
mod ingest;
mod live;
mod live_keys;
mod migrations;
mod observability;
mod partitions;
mod recipe;
mod refresh;
mod rescue;
mod retention;
mod rollups;
mod schema;
mod security;
mod sketches;
mod trust;
mod worker;
