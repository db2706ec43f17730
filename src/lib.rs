//! tally: keeps marketing analytics in PostgreSQL fast and fresh.
//!
//! The binary (`src/main.rs`) only parses the command line and calls
//! [`commands::execute`]; everything else lives in these modules.

pub mod aggregates;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboards;
pub mod db;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod http;
pub mod ingest;
pub mod maintenance;
pub mod metrics;
pub mod partitions;
pub mod readings;
pub mod refresh;
pub mod scheduler;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod worker;

pub use error::Error;

/// The schema migrations in `sql/migrations`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./sql/migrations");
