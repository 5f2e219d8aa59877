//! Logs and traces.
//!
//! Logs go to stderr, filtered by `LABLET_LOG` (default `info`), as JSON lines when
//! `LABLET_LOG_FORMAT=json` or when stderr is not a terminal, as human-readable lines when
//! `LABLET_LOG_FORMAT=text` or on a terminal. Every line written while a request is served
//! carries the request's span, hence its correlation id.
//!
//! Traces are exported over OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (see [`otlp`]); spans made only for traces
//! ([`TRACE_TARGET`]) never reach the logs.

pub mod http;
pub mod otlp;

use lablet_application::trace_context::TRACE_TARGET;
use std::io::IsTerminal;
use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Keeps the trace exporter alive; dropping it sends the spans still buffered.
#[must_use = "dropping the guard stops the trace exporter"]
pub struct TelemetryGuard {
    traces: Option<otlp::TraceExport>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take() {
            traces.shutdown();
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    fn from_env() -> Result<LogFormat, String> {
        match std::env::var("LABLET_LOG_FORMAT") {
            Ok(value) if value.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Ok(value) if value.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Ok(value) if !value.is_empty() => {
                Err(format!("LABLET_LOG_FORMAT: {value:?} is neither \"json\" nor \"text\""))
            }
            _ if std::io::stderr().is_terminal() => Ok(LogFormat::Text),
            _ => Ok(LogFormat::Json),
        }
    }
}

/// Installs logging and, when configured, trace export. Fails with a message naming the
/// setting when one is malformed. A second call in one process keeps the first set-up.
pub fn init() -> Result<TelemetryGuard, String> {
    let log_filter: Targets = match std::env::var("LABLET_LOG") {
        Ok(spec) if !spec.is_empty() => spec
            .parse()
            .map_err(|err| format!("LABLET_LOG: {spec:?} is not a log filter: {err}"))?,
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    let format = LogFormat::from_env()?;
    let traces = otlp::from_env()?;
    let installed = subscriber(log_filter, format, traces.as_ref()).try_init();
    // Already installed (tests start several apps in one process): the first one stays.
    if installed.is_err() {
        if let Some(traces) = traces {
            traces.shutdown();
        }
        return Ok(TelemetryGuard { traces: None });
    }
    Ok(TelemetryGuard { traces })
}

/// Log lines through `log_filter` in `format`, and spans to `traces` when exported.
fn subscriber(
    log_filter: Targets,
    format: LogFormat,
    traces: Option<&otlp::TraceExport>,
) -> impl Subscriber + Send + Sync {
    let log_filter = log_filter.with_target(TRACE_TARGET, LevelFilter::OFF);
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed(),
    };
    let mut layers = vec![logs];
    // A layer is added only when it exists: an absent (`None`) layer would count as interested
    // in every span and enable the trace-only ones.
    if let Some(traces) = traces {
        layers.push(traces.layer().boxed());
    }
    tracing_subscriber::registry().with(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_made_for_traces_are_disabled_when_traces_are_not_exported() {
        let everything = Targets::new().with_default(LevelFilter::TRACE);
        tracing::subscriber::with_default(subscriber(everything, LogFormat::Json, None), || {
            assert!(tracing::info_span!(target: TRACE_TARGET, "store").is_disabled());
            assert!(!tracing::info_span!("request").is_disabled());
        });
    }
}
