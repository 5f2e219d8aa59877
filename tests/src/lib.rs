//! Test support for Lablet's black-box tests and benchmark: start the real application on an
//! ephemeral port in a temporary data directory, and speak HTTP to it; plus the contract suites
//! every adapter of a port must pass.

pub mod bench;
pub mod contract;
pub mod fleet;
pub mod kurrent_model;
pub mod postgres;
pub mod process;
pub mod server;
pub mod sink;
pub mod url;

pub use server::TestServer;

/// Says, where the person running the tests sees it, that `test` checked nothing and why. The
/// test harness captures `eprintln!` of passing tests; a direct write to stderr is not.
pub fn report_skipped(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Prints a figure a test measured where the person running the tests sees it (like
/// [`report_skipped`], past the harness's capture).
pub fn report_measure(what: &str, figure: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "MEASURED {what}: {figure}");
}

/// The value of the first sample line of a Prometheus scrape starting with `prefix`.
pub fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
}
