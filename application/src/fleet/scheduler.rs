//! Runs the fleet jobs: a monitoring pass and a labs refresh at start (monitoring first, so a
//! worker's service is known available before its labs are refreshed), then each on its own
//! interval until shutdown, which also ends a pass under way.

use super::monitoring::Monitoring;
use super::refresh::LabsRefresh;
use super::FleetSettings;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// A pass as a boxed future, so that either job can be awaited in one place.
fn boxed_pass<'a>(
    pass: impl std::future::Future<Output = ()> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(pass)
}

/// Resolves once shutdown is asked for (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

pub struct FleetScheduler {
    pub refresh: Arc<LabsRefresh>,
    pub monitoring: Arc<Monitoring>,
    pub settings: FleetSettings,
}

impl FleetScheduler {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if !self.settings.enabled {
            return;
        }
        let first = async {
            self.monitor().await;
            self.refresh().await;
        };
        tokio::select! {
            _ = first => {}
            _ = stopped(&mut stop) => return,
        }
        let start = Instant::now();
        let mut monitoring = interval_at(
            start + self.settings.monitoring_interval,
            self.settings.monitoring_interval,
        );
        let mut refresh = interval_at(
            start + self.settings.labs_refresh_interval,
            self.settings.labs_refresh_interval,
        );
        monitoring.set_missed_tick_behavior(MissedTickBehavior::Delay);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // A pass stops where it is at shutdown: each command it sent was appended whole or
            // not at all, and the next start begins a fresh pass.
            let pass = tokio::select! {
                _ = monitoring.tick() => boxed_pass(self.monitor()),
                _ = refresh.tick() => boxed_pass(self.refresh()),
                _ = stopped(&mut stop) => return,
            };
            tokio::select! {
                _ = pass => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    async fn monitor(&self) {
        if let Err(err) = self.monitoring.run_all().await {
            tracing::warn!(error = %err, "monitoring pass could not run");
        }
    }

    async fn refresh(&self) {
        if let Err(err) = self.refresh.run_all().await {
            tracing::warn!(error = %err, "labs refresh could not run");
        }
    }
}
