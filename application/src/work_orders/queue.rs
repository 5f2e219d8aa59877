//! The claim index: which work orders can be claimed now, in claim order, kept in memory by
//! every replica from the log.
//!
//! [`WorkQueue::follow`] reads every work-order event of the log in order (from the start, so
//! its figures are the whole log's and equal on every replica) and keeps the orders that are not
//! final: their kind, priority, needs and payload. The pending ones are kept sorted by priority
//! (highest first), then by submission (oldest first); a claim takes the first that fits and
//! leases it through the order itself, which is the only judge: an index that lags only costs a
//! refused lease, never a second holder.
//!
//! The same reading counts what `/metrics` shows of the queue: orders by state and kind, the age
//! of the oldest pending order, attempts and lease expiries.

use crate::envelope::EventEnvelope;
use crate::metrics::Gauge;
use crate::ports::{Clock, EventStore};
use crate::shutdown::stopped;
use crate::subscription::Subscription;
use chrono::{DateTime, Utc};
use lablet_domain::work_order::{ResourceNeeds, WorkOrderEvent, WorkOrderState, LEASE_EXPIRED};
use lablet_domain::AggregateKind;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

/// Events read from the log per page while following it.
const PAGE_SIZE: usize = 1000;

/// A pending order's place in claim order: highest priority, then oldest submission.
type ClaimOrder = (Reverse<i32>, DateTime<Utc>, Uuid);

/// What an executor takes: which kinds, and how much it can still run.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    /// The kinds it runs; empty for any.
    pub kinds: Vec<String>,
    /// What it has free; `None` when it does not count.
    pub capacity: Option<ResourceNeeds>,
}

impl ClaimFilter {
    fn admits(&self, order: &Tracked) -> bool {
        let kind_fits = self.kinds.is_empty() || self.kinds.contains(&order.kind);
        kind_fits && self.capacity.is_none_or(|free| fits(&order.resources, &free))
    }
}

/// Whether `needs` fit in `free`, every resource on its own.
pub fn fits(needs: &ResourceNeeds, free: &ResourceNeeds) -> bool {
    needs.cpu_cores <= free.cpu_cores
        && needs.memory_gb <= free.memory_gb
        && needs.storage_gb <= free.storage_gb
        && needs.max_nodes <= free.max_nodes
}

/// An order taken from the index for a claim: what the executor is told besides its lease.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub resources: ResourceNeeds,
}

/// A non-final order as the index knows it.
#[derive(Debug, Clone)]
struct Tracked {
    kind: String,
    payload: serde_json::Value,
    priority: i32,
    resources: ResourceNeeds,
    submitted_at: DateTime<Utc>,
    /// Since when it has been pending (its submission or its last requeue).
    pending_since: DateTime<Utc>,
    state: WorkOrderState,
    /// The stream version of the last event read.
    version: u64,
    /// The version a claim of this process leased it at: an older event read later must not
    /// offer it again.
    claimed_version: u64,
}

impl Tracked {
    fn claim_order(&self, id: Uuid) -> ClaimOrder {
        (Reverse(self.priority), self.submitted_at, id)
    }
}

#[derive(Default)]
struct Index {
    orders: HashMap<Uuid, Tracked>,
    pending: BTreeSet<ClaimOrder>,
    /// (kind, state) → orders, final ones included.
    depth: BTreeMap<(String, WorkOrderState), u64>,
    /// Kind → leases taken (attempts begun).
    attempts: BTreeMap<String, u64>,
    /// Kind → leases that ran out.
    lease_expiries: BTreeMap<String, u64>,
    /// The log position read up to.
    position: u64,
}

impl Index {
    /// Applies one work-order event; answers whether an order became claimable.
    fn apply(&mut self, id: Uuid, version: u64, event: WorkOrderEvent) -> bool {
        if let WorkOrderEvent::Submitted {
            kind,
            payload,
            priority,
            resources,
            submitted_at,
            ..
        } = event
        {
            let tracked = Tracked {
                kind,
                payload,
                priority,
                resources,
                submitted_at,
                pending_since: submitted_at,
                state: WorkOrderState::Pending,
                version,
                claimed_version: 0,
            };
            *self
                .depth
                .entry((tracked.kind.clone(), WorkOrderState::Pending))
                .or_default() += 1;
            self.pending.insert(tracked.claim_order(id));
            self.orders.insert(id, tracked);
            return true;
        }
        let Some(tracked) = self.orders.get_mut(&id) else {
            return false;
        };
        tracked.version = version;
        match &event {
            WorkOrderEvent::Leased { .. } => *self.attempts.entry(tracked.kind.clone()).or_default() += 1,
            WorkOrderEvent::AttemptFailed { error, .. } | WorkOrderEvent::Failed { error, .. }
                if error == LEASE_EXPIRED =>
            {
                *self.lease_expiries.entry(tracked.kind.clone()).or_default() += 1;
            }
            WorkOrderEvent::Requeued { at } => tracked.pending_since = *at,
            _ => {}
        }
        let Some(state) = event.target_state() else {
            return false;
        };
        if let Some(count) = self.depth.get_mut(&(tracked.kind.clone(), tracked.state)) {
            *count = count.saturating_sub(1);
        }
        *self.depth.entry((tracked.kind.clone(), state)).or_default() += 1;
        tracked.state = state;
        let order = tracked.claim_order(id);
        let claimable = state == WorkOrderState::Pending && version > tracked.claimed_version;
        if claimable {
            self.pending.insert(order);
        } else {
            self.pending.remove(&order);
        }
        if state.is_final() {
            self.orders.remove(&id);
        }
        claimable
    }

    fn take(&mut self, filter: &ClaimFilter) -> Option<Candidate> {
        let (_, _, id) = *self
            .pending
            .iter()
            .find(|(_, _, id)| self.orders.get(id).is_some_and(|tracked| filter.admits(tracked)))?;
        let tracked = self.orders.get(&id)?;
        self.pending.remove(&tracked.claim_order(id));
        Some(Candidate {
            id,
            kind: tracked.kind.clone(),
            payload: tracked.payload.clone(),
            priority: tracked.priority,
            resources: tracked.resources,
        })
    }
}

/// The claim index of this replica. See the [module documentation](self).
pub struct WorkQueue {
    index: Mutex<Index>,
    /// Woken whenever an order becomes claimable.
    ready: Notify,
    clock: Arc<dyn Clock>,
}

impl WorkQueue {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        WorkQueue {
            index: Mutex::default(),
            ready: Notify::new(),
            clock,
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the log from its start and then as it grows, until `stop` turns true.
    pub async fn follow(self: Arc<Self>, events: Arc<dyn EventStore>, mut stop: watch::Receiver<bool>) {
        let mut subscription = Subscription::new(events, self.index().position, PAGE_SIZE);
        loop {
            let batch = tokio::select! {
                batch = subscription.next_batch() => batch,
                () = stopped(&mut stop) => return,
            };
            match batch {
                Ok(batch) => self.apply_all(&batch),
                Err(err) => {
                    tracing::warn!(error = %err, "the work queue could not read the log; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        () = stopped(&mut stop) => return,
                    }
                }
            }
        }
    }

    /// Applies a page of the log (events of other aggregates are passed over).
    pub fn apply_all(&self, batch: &[EventEnvelope]) {
        let mut woken = false;
        {
            let mut index = self.index();
            for envelope in batch {
                index.position = envelope.position;
                if envelope.aggregate_kind() != Some(AggregateKind::WorkOrder) {
                    continue;
                }
                let Ok(id) = envelope.aggregate_id().parse::<Uuid>() else {
                    continue;
                };
                match envelope.decode::<WorkOrderEvent>() {
                    Ok(event) => woken |= index.apply(id, envelope.version, event),
                    Err(err) => {
                        tracing::warn!(error = %err, position = envelope.position, "unreadable work-order event")
                    }
                }
            }
        }
        if woken {
            self.ready.notify_waiters();
        }
    }

    /// The log position the index has read up to.
    pub fn position(&self) -> u64 {
        self.index().position
    }

    /// Takes the first pending order `filter` admits out of claim order, for this process to
    /// lease. After the lease, say [`WorkQueue::leased`] or [`WorkQueue::put_back`].
    pub fn take(&self, filter: &ClaimFilter) -> Option<Candidate> {
        self.index().take(filter)
    }

    /// The lease of a taken order succeeded at `version`.
    pub fn leased(&self, id: Uuid, version: u64) {
        if let Some(tracked) = self.index().orders.get_mut(&id) {
            tracked.claimed_version = tracked.claimed_version.max(version);
        }
    }

    /// The lease of a taken order could not be tried (a store failed): it is offered again if
    /// the index still has it pending.
    pub fn put_back(&self, id: Uuid) {
        let mut index = self.index();
        let order = match index.orders.get(&id) {
            Some(tracked) if tracked.state == WorkOrderState::Pending => tracked.claim_order(id),
            _ => return,
        };
        index.pending.insert(order);
        drop(index);
        self.ready.notify_waiters();
    }

    /// Waits until an order may have become claimable, or `timeout` passes. Register before
    /// looking: take the future, then [`WorkQueue::take`], then await it.
    pub fn claimable(&self) -> tokio::sync::futures::Notified<'_> {
        self.ready.notified()
    }

    /// The queue's figures for `/metrics`.
    pub fn gauges(&self) -> Vec<Gauge> {
        let now = self.clock.now();
        let index = self.index();
        let mut oldest: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        for (_, _, id) in &index.pending {
            if let Some(tracked) = index.orders.get(id) {
                let since = oldest.entry(tracked.kind.as_str()).or_insert(tracked.pending_since);
                *since = (*since).min(tracked.pending_since);
            }
        }
        let kind = |kind: &str| ("kind", kind.to_owned());
        vec![
            Gauge {
                name: "lablet_work_orders",
                help: "Work orders in the log by kind and state.",
                values: index
                    .depth
                    .iter()
                    .map(|((k, state), count)| (vec![kind(k), ("state", state.as_str().to_owned())], *count as f64))
                    .collect(),
            },
            Gauge {
                name: "lablet_work_order_oldest_pending_seconds",
                help: "How long the longest-waiting pending order of each kind has waited to be claimed.",
                values: oldest
                    .into_iter()
                    .map(|(k, since)| (vec![kind(k)], (now - since).num_milliseconds().max(0) as f64 / 1000.0))
                    .collect(),
            },
            Gauge {
                name: "lablet_work_order_attempts",
                help: "Leases taken on work orders (attempts begun), by kind, in the whole log.",
                values: index.attempts.iter().map(|(k, n)| (vec![kind(k)], *n as f64)).collect(),
            },
            Gauge {
                name: "lablet_work_order_lease_expiries",
                help: "Leases that ran out before their holder reported, by kind, in the whole log.",
                values: index
                    .lease_expiries
                    .iter()
                    .map(|(k, n)| (vec![kind(k)], *n as f64))
                    .collect(),
            },
        ]
    }
}
