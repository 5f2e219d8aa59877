//! Test support for Lablet's black-box tests and benchmark: start the real application on an
//! ephemeral port in a temporary data directory, and speak HTTP to it; plus the contract suites
//! every adapter of a port must pass.

pub mod bench;
pub mod contract;
pub mod postgres;
pub mod process;
pub mod server;
pub mod sink;

pub use server::TestServer;
