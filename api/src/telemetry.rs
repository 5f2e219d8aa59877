//! Logging set-up: human-readable lines by default, JSON with `LABLET_LOG_FORMAT=json`; the
//! level filter comes from `LABLET_LOG` (default `info`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    let filter: Targets = std::env::var("LABLET_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| "info".parse().unwrap_or_default());
    let json = std::env::var("LABLET_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    // Already initialised (tests start several apps in one process): keep the first.
    let _ = result;
}
