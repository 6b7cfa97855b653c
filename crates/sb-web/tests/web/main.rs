//! The web adapter as clients see it: in-process requests through the whole router, on a
//! fresh database per test (SQLite, or PostgreSQL when SWITCHBOARD_TEST_PG is set), and a
//! real server on port 0.

mod auth;
mod common;
mod dashboard;
mod monitoring;
mod routes;
mod serve;
