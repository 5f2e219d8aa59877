//! OpenTelemetry trace export over OTLP/HTTP (protobuf).
//!
//! On when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is) or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`/v1/traces` appended) is set; a value that is not an `http(s)` URL fails the start. The
//! other standard variables are honoured by the SDK: `OTEL_SERVICE_NAME` (default `lablet`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`/`_ARG` (default parent-based, always on),
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` and the `OTEL_BSP_*` batch
//! settings. Spans are batched and sent from a thread of their own; a collector that is down
//! costs dropped spans, never a slower request.

use lablet_application::trace_context::TRACE_TARGET;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The crates whose spans are exported.
const TRACED_TARGETS: [&str; 5] = [
    "lablet_api",
    "lablet_application",
    "lablet_projections",
    "lablet_infrastructure",
    TRACE_TARGET,
];

/// A running trace exporter.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// The layer turning spans into OpenTelemetry spans (info and above, Lablet's own only).
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let targets = TRACED_TARGETS.iter().fold(Targets::new(), |targets, target| {
            targets.with_target(*target, LevelFilter::INFO)
        });
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("lablet"))
            .with_threads(false)
            .with_filter(targets)
    }

    /// Sends what is buffered and stops.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("lablet: traces not all exported at shutdown: {err}");
        }
    }
}

/// The trace endpoint the environment names, if any.
fn endpoint_from_env() -> Result<Option<String>, String> {
    let named = |name: &'static str| {
        std::env::var(name)
            .ok()
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .map(|value| (name, value))
    };
    let Some((name, value)) = named(TRACES_ENDPOINT).or_else(|| named(ENDPOINT)) else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&value).map_err(|err| format!("{name}: {value:?} is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{name}: {value:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(Some(if name == TRACES_ENDPOINT {
        value
    } else {
        format!("{}/v1/traces", value.trim_end_matches('/'))
    }))
}

/// Starts the exporter when an endpoint is configured.
pub fn from_env() -> Result<Option<TraceExport>, String> {
    let Some(endpoint) = endpoint_from_env()? else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .map_err(|err| format!("{ENDPOINT}: cannot build the trace exporter: {err}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("lablet");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    Ok(Some(TraceExport { provider }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test owns these variables: tests of this crate run on threads of one process.
    #[test]
    fn the_endpoint_comes_from_the_standard_variables_and_must_be_a_url() {
        std::env::remove_var(TRACES_ENDPOINT);
        std::env::remove_var(ENDPOINT);
        assert_eq!(endpoint_from_env(), Ok(None));

        std::env::set_var(ENDPOINT, "http://collector:4318/");
        assert_eq!(endpoint_from_env(), Ok(Some("http://collector:4318/v1/traces".into())));

        std::env::set_var(TRACES_ENDPOINT, "https://collector/custom/path");
        assert_eq!(endpoint_from_env(), Ok(Some("https://collector/custom/path".into())));

        std::env::set_var(TRACES_ENDPOINT, "collector:4318");
        let refused = endpoint_from_env().expect_err("no scheme");
        assert!(refused.starts_with(TRACES_ENDPOINT), "{refused}");

        std::env::remove_var(TRACES_ENDPOINT);
        std::env::set_var(ENDPOINT, "not a url");
        let refused = endpoint_from_env().expect_err("not a URL");
        assert!(refused.starts_with(ENDPOINT), "{refused}");
        std::env::remove_var(ENDPOINT);
    }
}
