//! In-process metrics, rendered in the Prometheus text format (`GET /metrics`).
//!
//! Counters and latency histograms are kept here as requests happen: every command and query
//! through the mediator (by name, kind and outcome) and every HTTP request (by route pattern and
//! status). Gauges that a store already knows (log head, projection and outbox positions,
//! parked events) are read when the metrics are scraped and passed to [`Metrics::render`].

use crate::error::AppError;
use crate::mediator::RequestKind;
use crate::mediator::{AnyOutput, Next, PipelineBehaviour};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default, Clone)]
struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of one labelled series.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.buckets) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// A gauge read at scrape time: name, help, and its labelled values.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    /// (label name, label value) pairs or none, and the value.
    pub values: Vec<(Vec<(&'static str, String)>, f64)>,
}

#[derive(Default)]
pub struct Metrics {
    /// (request, kind, outcome) → latency.
    requests: Mutex<BTreeMap<(&'static str, &'static str, &'static str), Histogram>>,
    /// (route pattern, method, status) → latency.
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// Event type → events appended by this process.
    appended: Mutex<BTreeMap<&'static str, u64>>,
    /// Fleet job outcomes: (job, outcome) → count.
    fleet: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Role → times this replica took its lease.
    lease_changes: Mutex<BTreeMap<String, u64>>,
}

/// The outcome label of a mediator request.
fn outcome(result: &Result<AnyOutput, AppError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(AppError::Validation(_)) => "invalid",
        Err(AppError::NotFound(_)) => "not_found",
        Err(AppError::Forbidden(_)) => "forbidden",
        Err(AppError::Rule(_)) => "refused",
        Err(AppError::Conflict(_)) => "conflict",
        Err(AppError::Fenced { .. }) => "fenced",
        Err(AppError::ProjectionLagging { .. }) => "lagging",
        Err(AppError::Unavailable(_)) => "unavailable",
        Err(AppError::TooSoon { .. }) => "too_soon",
        Err(AppError::Upstream(_)) => "upstream_failed",
        Err(AppError::Internal(_)) => "internal_error",
    }
}

/// Label values are ours (names, patterns) but escaped anyway, as the format asks.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn observe_request(&self, name: &'static str, kind: RequestKind, outcome: &'static str, seconds: f64) {
        let kind = match kind {
            RequestKind::Command => "command",
            RequestKind::Query => "query",
        };
        if let Ok(mut requests) = self.requests.lock() {
            requests.entry((name, kind, outcome)).or_default().observe(seconds);
        }
    }

    /// Counts events this process appended, by type.
    pub fn count_appended(&self, event_types: impl IntoIterator<Item = &'static str>) {
        if let Ok(mut appended) = self.appended.lock() {
            for event_type in event_types {
                *appended.entry(event_type).or_default() += 1;
            }
        }
    }

    /// Counts `n` outcomes of a fleet job (`labs_refresh`/`created` …).
    pub fn count_fleet(&self, job: &'static str, outcome: &'static str, n: u64) {
        if let Ok(mut fleet) = self.fleet.lock() {
            *fleet.entry((job, outcome)).or_default() += n;
        }
    }

    /// Counts that this replica took the lease of `role`.
    pub fn count_lease_change(&self, role: &str) {
        if let Ok(mut changes) = self.lease_changes.lock() {
            *changes.entry(role.to_owned()).or_default() += 1;
        }
    }

    pub fn observe_http(&self, route: String, method: String, status: u16, seconds: f64) {
        if let Ok(mut http) = self.http.lock() {
            http.entry((route, method, status)).or_default().observe(seconds);
        }
    }

    /// Everything in the Prometheus text format (version 0.0.4), with `gauges` appended.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        out.push_str("# HELP lablet_requests_total Commands and queries through the mediator.\n");
        out.push_str("# TYPE lablet_requests_total counter\n");
        for ((name, kind, outcome), histogram) in &requests {
            let _ = writeln!(
                out,
                "lablet_requests_total{{request=\"{name}\",kind=\"{kind}\",outcome=\"{outcome}\"}} {}",
                histogram.count
            );
        }
        out.push_str("# HELP lablet_request_duration_seconds Time in the mediator, retries included.\n");
        out.push_str("# TYPE lablet_request_duration_seconds histogram\n");
        for ((name, kind, outcome), histogram) in &requests {
            let labels = format!("request=\"{name}\",kind=\"{kind}\",outcome=\"{outcome}\"");
            histogram.render(&mut out, "lablet_request_duration_seconds", &labels);
        }
        let http = self.http.lock().map(|h| h.clone()).unwrap_or_default();
        out.push_str("# HELP lablet_http_requests_total HTTP requests by route pattern, method and status.\n");
        out.push_str("# TYPE lablet_http_requests_total counter\n");
        for ((route, method, status), histogram) in &http {
            let _ = writeln!(
                out,
                "lablet_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {}",
                escape(route),
                histogram.count
            );
        }
        out.push_str("# HELP lablet_http_request_duration_seconds Time to the response head.\n");
        out.push_str("# TYPE lablet_http_request_duration_seconds histogram\n");
        for ((route, method, status), histogram) in &http {
            let labels = format!("route=\"{}\",method=\"{method}\",status=\"{status}\"", escape(route));
            histogram.render(&mut out, "lablet_http_request_duration_seconds", &labels);
        }
        let appended = self.appended.lock().map(|a| a.clone()).unwrap_or_default();
        out.push_str("# HELP lablet_events_appended_total Events this process appended to the log, by type.\n");
        out.push_str("# TYPE lablet_events_appended_total counter\n");
        for (event_type, count) in &appended {
            let _ = writeln!(
                out,
                "lablet_events_appended_total{{event_type=\"{event_type}\"}} {count}"
            );
        }
        let fleet = self.fleet.lock().map(|f| f.clone()).unwrap_or_default();
        out.push_str("# HELP lablet_fleet_job_outcomes_total What the fleet jobs did: workers and labs by outcome.\n");
        out.push_str("# TYPE lablet_fleet_job_outcomes_total counter\n");
        for ((job, outcome), count) in &fleet {
            let _ = writeln!(
                out,
                "lablet_fleet_job_outcomes_total{{job=\"{job}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        let lease_changes = self.lease_changes.lock().map(|c| c.clone()).unwrap_or_default();
        out.push_str("# HELP lablet_lease_changes_total Times this replica took a role's lease.\n");
        out.push_str("# TYPE lablet_lease_changes_total counter\n");
        for (role, count) in &lease_changes {
            let _ = writeln!(out, "lablet_lease_changes_total{{role=\"{}\"}} {count}", escape(role));
        }
        for gauge in gauges {
            let _ = writeln!(out, "# HELP {} {}", gauge.name, gauge.help);
            let _ = writeln!(out, "# TYPE {} gauge", gauge.name);
            for (labels, value) in &gauge.values {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
                    .collect();
                if labels.is_empty() {
                    let _ = writeln!(out, "{} {value}", gauge.name);
                } else {
                    let _ = writeln!(out, "{}{{{}}} {value}", gauge.name, labels.join(","));
                }
            }
        }
        out
    }
}

/// Counts every request through the mediator and times it, retries included.
pub struct MetricsBehaviour {
    metrics: std::sync::Arc<Metrics>,
}

impl MetricsBehaviour {
    pub fn new(metrics: std::sync::Arc<Metrics>) -> Self {
        MetricsBehaviour { metrics }
    }
}

#[async_trait]
impl PipelineBehaviour for MetricsBehaviour {
    async fn handle(&self, next: Next<'_>) -> Result<AnyOutput, AppError> {
        let info = next.info();
        let started = Instant::now();
        let result = next.run().await;
        self.metrics
            .observe_request(info.name, info.kind, outcome(&result), started.elapsed().as_secs_f64());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let metrics = Metrics::default();
        metrics.observe_request("lab_records.observe", RequestKind::Command, "ok", 0.0007);
        metrics.observe_request("lab_records.observe", RequestKind::Command, "ok", 0.02);
        metrics.observe_http("/api/v1/lab-records/{id}".into(), "GET".into(), 404, 0.003);
        let gauge = Gauge {
            name: "lablet_events_head_position",
            help: "The log's last position.",
            values: vec![(Vec::new(), 42.0)],
        };
        let text = metrics.render(&[gauge]);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .to_owned()
        };
        assert_eq!(
            line("lablet_requests_total{request=\"lab_records.observe\""),
            "lablet_requests_total{request=\"lab_records.observe\",kind=\"command\",outcome=\"ok\"} 2"
        );
        assert!(line("lablet_request_duration_seconds_bucket{request=\"lab_records.observe\",kind=\"command\",outcome=\"ok\",le=\"0.001\"}").ends_with(" 1"));
        assert!(line("lablet_request_duration_seconds_bucket{request=\"lab_records.observe\",kind=\"command\",outcome=\"ok\",le=\"0.025\"}").ends_with(" 2"));
        assert!(line("lablet_request_duration_seconds_count{").ends_with(" 2"));
        assert_eq!(
            line("lablet_http_requests_total{"),
            "lablet_http_requests_total{route=\"/api/v1/lab-records/{id}\",method=\"GET\",status=\"404\"} 1"
        );
        assert_eq!(line("lablet_events_head_position "), "lablet_events_head_position 42");
    }
}
