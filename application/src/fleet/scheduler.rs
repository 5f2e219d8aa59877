//! Runs the fleet jobs with a schedule per worker: each worker is monitored every monitoring
//! interval and refreshed every labs-refresh interval, counted from its own last run, so a
//! worker that is slow or hangs delays nobody but itself.
//!
//! At start every worker is due at once, monitoring first (so its service is known before its
//! labs are refreshed). A worker runs one job at a time. The roster of workers is read from the
//! read model at every wake-up, which comes when the next worker is due and at least once per
//! monitoring interval, so new workers are picked up and removed ones forgotten. Waiting goes
//! through the clock port: tests move a manual clock instead of sleeping. Shutdown ends every
//! job under way (each command a job sent was appended whole or not at all).

use super::monitoring::{Monitoring, MONITORING_CONCURRENCY};
use super::refresh::LabsRefresh;
use super::roster::RosterEntry;
use super::FleetSettings;
use crate::context::RequestContext;
use crate::ports::{Clock, LeaseFence};
use crate::shutdown::stopped;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The soonest the roster is read again after a monitoring job finished.
const ROSTER_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Which job a worker is due for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Monitor,
    Refresh,
}

/// One worker's schedule.
#[derive(Debug, Clone, Copy)]
struct Timers {
    next_monitor: DateTime<Utc>,
    next_refresh: DateTime<Utc>,
    running: bool,
}

#[derive(Clone)]
pub struct FleetScheduler {
    pub refresh: Arc<LabsRefresh>,
    pub monitoring: Arc<Monitoring>,
    pub settings: FleetSettings,
    pub clock: Arc<dyn Clock>,
    /// The lease the jobs run under while this replica holds the `fleet` role; their commands
    /// carry it and are refused once another replica took the role.
    pub fence: Option<LeaseFence>,
}

fn after(at: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(interval).unwrap_or(chrono::TimeDelta::MAX)
}

impl FleetScheduler {
    /// A context for one job's commands, carrying the lease's fence.
    fn job_context(&self) -> RequestContext {
        self.fence
            .as_ref()
            .map_or_else(RequestContext::system, RequestContext::system_under)
    }

    /// Runs the jobs until `stop` turns true, under `fence` when the role is leased.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>, fence: Option<LeaseFence>) {
        self.fence = fence;
        if !self.settings.enabled {
            return;
        }
        let monitor_permits = Arc::new(Semaphore::new(MONITORING_CONCURRENCY));
        let refresh_permits = Arc::new(Semaphore::new(self.settings.refresh_concurrency.max(1)));
        let mut timers: HashMap<Uuid, Timers> = HashMap::new();
        let mut jobs: JoinSet<(Uuid, Job)> = JoinSet::new();
        let mut roster: Vec<RosterEntry> = Vec::new();
        let mut roster_read_at: Option<DateTime<Utc>> = None;
        // A finished monitoring job may have changed what the roster says (a worker now available
        // can be refreshed), so the roster is read again soon after, at most once a second.
        let mut roster_stale = true;
        let mut next_sweep = self.clock.now();
        loop {
            let now = self.clock.now();
            let roster_due = roster_read_at.is_none_or(|at| {
                now >= after(at, self.settings.monitoring_interval)
                    || (roster_stale && now >= after(at, ROSTER_AT_MOST_EVERY))
            });
            if roster_due {
                match self.monitoring.roster(&RequestContext::system()).await {
                    Ok(fresh) => roster = fresh,
                    Err(err) => tracing::warn!(error = %err, "the fleet roster could not be read"),
                }
                roster_read_at = Some(now);
                roster_stale = false;
            }
            self.start_due(
                &roster,
                &mut timers,
                &mut jobs,
                now,
                [&monitor_permits, &refresh_permits],
            );
            if now >= next_sweep {
                let (refresh, context) = (self.refresh.clone(), self.job_context());
                jobs.spawn(async move {
                    refresh.sweep(&context).await;
                    (Uuid::nil(), Job::Refresh)
                });
                next_sweep = after(now, self.settings.labs_refresh_interval);
            }
            let read_at = roster_read_at.unwrap_or(now);
            let next_roster = if roster_stale {
                after(read_at, ROSTER_AT_MOST_EVERY)
            } else {
                after(read_at, self.settings.monitoring_interval)
            };
            let wake = timers
                .values()
                .filter(|t| !t.running)
                .map(|t| t.next_monitor.min(t.next_refresh))
                .chain([next_sweep, next_roster])
                .min()
                .unwrap_or(next_roster);
            tokio::select! {
                () = self.clock.sleep_until(wake) => {}
                Some(done) = jobs.join_next(), if !jobs.is_empty() => {
                    if let Ok((worker, job)) = done {
                        if let Some(timer) = timers.get_mut(&worker) {
                            timer.running = false;
                        }
                        roster_stale |= job == Job::Monitor;
                    }
                }
                () = stopped(&mut stop) => {
                    jobs.abort_all();
                    return;
                }
            }
        }
    }

    /// Starts the job each idle worker of `roster` is due for, and forgets workers no longer in
    /// it.
    fn start_due(
        &self,
        roster: &[RosterEntry],
        timers: &mut HashMap<Uuid, Timers>,
        jobs: &mut JoinSet<(Uuid, Job)>,
        now: DateTime<Utc>,
        [monitor_permits, refresh_permits]: [&Arc<Semaphore>; 2],
    ) {
        timers.retain(|id, t| t.running || roster.iter().any(|w| w.id == *id));
        for worker in roster {
            let timer = timers.entry(worker.id).or_insert(Timers {
                next_monitor: now,
                next_refresh: now,
                running: false,
            });
            if timer.running {
                continue;
            }
            let job = if now >= timer.next_monitor {
                Job::Monitor
            } else if now >= timer.next_refresh && worker.can_take_work() {
                Job::Refresh
            } else {
                continue;
            };
            timer.running = true;
            let permits = match job {
                Job::Monitor => {
                    timer.next_monitor = after(now, self.settings.monitoring_interval);
                    monitor_permits.clone()
                }
                Job::Refresh => {
                    timer.next_refresh = after(now, self.settings.labs_refresh_interval);
                    refresh_permits.clone()
                }
            };
            let (monitoring, refresh, worker) = (self.monitoring.clone(), self.refresh.clone(), worker.clone());
            let context = self.job_context();
            jobs.spawn(async move {
                let _permit = permits.acquire_owned().await;
                match job {
                    Job::Monitor => monitoring.run_one(&worker, &context).await,
                    Job::Refresh => refresh.run_one(&worker, &context).await,
                }
                (worker.id, job)
            });
        }
    }
}
