//! pairgate's integration tests: one binary (one link step), modules per surface. Every test that
//! touches the database runs on SQLite and, when `PAIRGATE_TEST_POSTGRES_URL` is set, on
//! PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

pub mod support;

mod architecture;
mod audit;
mod backups;
mod binary;
mod browser;
mod browser_account;
mod browser_device;
mod browser_devices;
mod browser_forms;
mod browser_history;
mod browser_oidc;
mod browser_pages;
mod browser_passkeys;
mod cli;
mod cli_start;
mod code_shape;
mod demo;
mod docs_examples;
mod erp;
mod getting_started;
mod maintenance;
mod migrations;
mod oauth;
mod oauth_refusals;
mod oidc;
mod ops;
mod outage;
pub mod pairing;
mod passkeys;
mod portal;
mod relying_app_example;
mod replay;
mod scale_out;
mod schema;
mod sqlite_writer;
mod store_writes;
mod telemetry;
mod trusted_proxies;
