//! Singleton roles: background work that must run once per deployment (each projection, each
//! outbox relay, the inbox processor, the fleet jobs) runs only on the replica that holds its
//! lease.
//!
//! Every replica runs [`Leadership::run_role`] for every role. The loop tries to take the
//! role's lease; the holder starts the role and renews the lease every `renew_every`, and a
//! replica that cannot renew (another replica took the lease after it expired, or the store
//! did not answer before the lease ran out) stops its role and goes back to waiting. A standby
//! holds nothing and still serves the API. On shutdown the holder stops its role, lets it
//! commit, and releases the lease so that another replica takes over at once.
//!
//! A lease is a promise about time, and a paused process can outlive it; correctness rests on
//! the fences beneath: a projection commit lands only from the checkpoint it started at, a
//! relay's writes and a job's commands carry its lease's token and are refused once a newer
//! holder exists, every command carries its expected version, and the outbox delivers at least
//! once.

use crate::metrics::Metrics;
use crate::ports::{Clock, Lease, LeaseFence, LeaseStore};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a lease lasts and how often its holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    pub ttl: Duration,
    pub renew_every: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            ttl: Duration::from_secs(10),
            renew_every: Duration::from_secs(3),
        }
    }
}

/// This replica's side of the leases: who it is, and what it holds now.
pub struct Leadership {
    store: Arc<dyn LeaseStore>,
    replica: String,
    started_at: DateTime<Utc>,
    settings: LeaseSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// Every role this replica runs for, with its lease while it holds it.
    roles: Mutex<BTreeMap<String, Option<Lease>>>,
}

/// Why a holder stopped running its role.
enum Ended {
    Shutdown,
    Lost,
}

fn after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}

impl Leadership {
    pub fn new(
        store: Arc<dyn LeaseStore>,
        replica: String,
        settings: LeaseSettings,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Leadership {
            store,
            replica,
            started_at: clock.now(),
            settings,
            clock,
            metrics,
            roles: Mutex::default(),
        }
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn store(&self) -> &Arc<dyn LeaseStore> {
        &self.store
    }

    pub fn settings(&self) -> LeaseSettings {
        self.settings
    }

    /// Every role this replica runs for, and whether it holds its lease now.
    pub fn roles(&self) -> Vec<(String, bool)> {
        let roles = self.roles.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        roles
            .iter()
            .map(|(role, lease)| (role.clone(), lease.is_some()))
            .collect()
    }

    fn record(&self, role: &str, lease: Option<Lease>) {
        let mut roles = self.roles.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = roles.insert(role.to_owned(), lease.clone());
        let token = |lease: &Option<Lease>| lease.as_ref().map(|l| l.token);
        if let Some(lease) = &lease {
            if token(&before.flatten()) != Some(lease.token) {
                self.metrics.count_lease_change(role);
                tracing::info!(role, token = lease.token, replica = %self.replica, "took the lease");
            }
        }
    }

    async fn take(&self, role: &str) -> Result<Option<Lease>, crate::ports::LeaseError> {
        let now = self.clock.now();
        self.store
            .acquire(role, &self.replica, now, after(now, self.settings.ttl))
            .await
    }

    /// Runs `role` (started by `start` with a stop signal of its own and the lease it runs
    /// under, whose fence its writes carry) whenever this replica holds the role's lease, until
    /// `stop` turns true.
    pub async fn run_role<F, Fut>(self: Arc<Self>, role: String, mut stop: watch::Receiver<bool>, start: F)
    where
        F: Fn(watch::Receiver<bool>, LeaseFence) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.record(&role, None);
        while !*stop.borrow() {
            let lease = match self.take(&role).await {
                Ok(Some(lease)) => lease,
                Ok(None) => {
                    self.record(&role, None);
                    if !self.pause(&mut stop).await {
                        return;
                    }
                    continue;
                }
                Err(err) => {
                    tracing::warn!(role, error = %err, "the lease store did not answer");
                    if !self.pause(&mut stop).await {
                        return;
                    }
                    continue;
                }
            };
            self.record(&role, Some(lease.clone()));
            let (stop_role, role_stopped) = watch::channel(false);
            let task = tokio::spawn(start(role_stopped, LeaseFence::from(&lease)));
            let ended = self.hold(&role, lease, &mut stop).await;
            let _ = stop_role.send(true);
            if let Err(err) = task.await {
                tracing::error!(role, error = %err, "the role's task failed");
            }
            self.record(&role, None);
            match ended {
                Ended::Shutdown => {
                    if let Err(err) = self.store.release(&role, &self.replica).await {
                        tracing::warn!(role, error = %err, "the lease could not be released; it expires instead");
                    }
                    return;
                }
                Ended::Lost => tracing::warn!(role, replica = %self.replica, "lost the lease; the role stopped here"),
            }
        }
    }

    /// Renews `lease` every `renew_every` until shutdown or until it cannot be renewed.
    async fn hold(&self, role: &str, mut lease: Lease, stop: &mut watch::Receiver<bool>) -> Ended {
        loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return Ended::Shutdown,
                () = self.clock.sleep(self.settings.renew_every) => {}
            }
            match self.take(role).await {
                Ok(Some(renewed)) if renewed.token == lease.token => {
                    lease = renewed;
                    self.record(role, Some(lease.clone()));
                }
                Ok(_) => return Ended::Lost,
                // The store did not answer: hold on while the lease surely lasts (one renewal
                // period of margin), then give the role up.
                Err(err) => {
                    tracing::warn!(role, error = %err, "the lease could not be renewed");
                    if after(self.clock.now(), self.settings.renew_every) >= lease.expires_at {
                        return Ended::Lost;
                    }
                }
            }
        }
    }

    /// Waits one renewal period; false if shutdown came first.
    async fn pause(&self, stop: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = self.clock.sleep(self.settings.renew_every) => true,
            _ = stop.wait_for(|stop| *stop) => false,
        }
    }

    /// Says this replica is alive every renewal period, until `stop` turns true.
    pub async fn heartbeat(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let beat = self
                .store
                .heartbeat(&self.replica, self.started_at, self.clock.now())
                .await;
            if let Err(err) = beat {
                tracing::warn!(error = %err, "the replica heartbeat was not recorded");
            }
            if !self.pause(&mut stop).await {
                return;
            }
        }
    }
}
