//! Lablet's HTTP API and command line: the axum router, problem+json errors, strict request
//! extractors, start-up wiring, and the `lablet` binary's commands.

pub mod app;
pub mod auth;
pub mod cli;
pub mod extract;
pub mod limits;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod strict_json;
pub mod telemetry;
