//! The relay: follows the log and delivers each public event to one sink.
//!
//! One coordinator owns all state; delivery runs in tasks, one per subject at a time, so a
//! subject's events go out strictly in log order while up to `concurrency` subjects are in
//! flight. A subject whose event keeps failing is *held*: the failing event and every later
//! event of that subject are parked (durably, before the checkpoint may pass them), and the
//! others keep flowing. A redrive puts a held subject's parked events back at the front of its
//! queue, in order.
//!
//! The checkpoint is the position before the oldest event still outstanding: at least once,
//! never skipped. A subject stuck in its retries holds the checkpoint back (until it is
//! parked) while the others go on, so every finished run also records how far its subject got
//! beyond the checkpoint; a restart skips what those records cover and delivers again only the
//! runs that were in flight (at most `concurrency` runs of at most 64 events). Memory is
//! bounded by `window` outstanding events.

use crate::envelope::EventEnvelope;
use crate::ports::{
    Clock, EventStore, EventStoreError, LeaseFence, OutboxStore, OutboxStoreError, ParkedEvent, RelayMark, SystemClock,
};
use crate::ports::{IdSource, UuidV7Ids};
use crate::shutdown::{pause_unless_stopped, stopped};
use crate::subscription::Subscription;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_domain::AggregateKind;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Events read from the log per page.
const PAGE: usize = 500;
/// Most events one delivery task takes for its subject.
const RUN_LENGTH: usize = 64;
/// Pause before the relay starts again after a store error.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Where events go. Adapters live in `lablet-infrastructure`.
#[async_trait]
pub trait CloudEventSink: Send + Sync + 'static {
    /// The sink's name, which keys its checkpoint and parked events (`http`, `nats`).
    fn name(&self) -> &str;
    /// Delivers one event; `Ok` only once the receiver has acknowledged it.
    async fn deliver(&self, event: &EventEnvelope) -> Result<(), DeliveryError>;
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    /// Retrying cannot help (the receiver refused the event itself): park it at once.
    pub permanent: bool,
}

impl DeliveryError {
    pub fn retryable(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// Events that leave Lablet: everything but its internal bookkeeping (received messages).
pub fn is_public(event: &EventEnvelope) -> bool {
    event.aggregate_kind().is_none_or(publishes)
}

/// Whether the events of `kind` are published to integrators.
fn publishes(kind: AggregateKind) -> bool {
    match kind {
        AggregateKind::LabRecord
        | AggregateKind::LabletInstance
        | AggregateKind::WorkOrder
        | AggregateKind::Worker
        | AggregateKind::LabletDefinition
        | AggregateKind::WorkerTemplate => true,
        AggregateKind::InboxMessage => false,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelaySettings {
    /// Delivery attempts before an event is parked.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles per attempt, with equal jitter.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_cap: Duration,
    /// Subjects delivered at the same time.
    pub concurrency: usize,
    /// Events read but not yet delivered or parked, at most.
    pub window: usize,
    /// How often the checkpoint is saved and redrive requests are looked for.
    pub tick: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            max_attempts: 8,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(60),
            concurrency: 16,
            window: 10_000,
            tick: Duration::from_millis(500),
        }
    }
}

impl RelaySettings {
    /// The wait after failed attempt `attempt` (1-based): base × 2^(attempt-1), capped, with
    /// equal jitter (half fixed, half random) so that retries of many subjects spread out.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.retry_base.saturating_mul(1 << exponent).min(self.retry_cap);
        full / 2 + full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Events(#[from] EventStoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxStoreError),
    #[error("a delivery task failed: {0}")]
    Task(String),
    #[error("the log reader stopped")]
    ReaderStopped,
}

/// An event waiting for delivery; `redrive` marks one that is parked already.
struct Outgoing {
    event: EventEnvelope,
    redrive: bool,
}

/// What a delivery task did with its subject's run of events.
struct RunOutcome {
    subject: String,
    delivered: Vec<Outgoing>,
    /// The event that kept failing, its attempts and last error; the rest were not tried.
    failed: Option<(Outgoing, u32, String)>,
    not_tried: Vec<Outgoing>,
}

pub struct OutboxRelay {
    events: Arc<dyn EventStore>,
    outbox: Arc<dyn OutboxStore>,
    sink: Arc<dyn CloudEventSink>,
    settings: RelaySettings,
    redrive_requested: Arc<Notify>,
    clock: Arc<dyn Clock>,
}

impl OutboxRelay {
    pub fn new(
        events: Arc<dyn EventStore>,
        outbox: Arc<dyn OutboxStore>,
        sink: Arc<dyn CloudEventSink>,
        settings: RelaySettings,
    ) -> Self {
        OutboxRelay {
            events,
            outbox,
            sink,
            settings,
            redrive_requested: Arc::new(Notify::new()),
            clock: Arc::new(SystemClock),
        }
    }

    /// Waits, timestamps and ticks on `clock` instead of the wall clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The signal that wakes this relay to look for redrive requests at once (requests made in
    /// other processes are found by the periodic look).
    pub fn redrive_signal(&self) -> Arc<Notify> {
        self.redrive_requested.clone()
    }

    pub fn sink_name(&self) -> &str {
        self.sink.name()
    }

    /// Relays under the sink's lease (`fence`) until `shutdown` turns true, starting again
    /// from the checkpoint after errors; stops at once if another replica took the lease.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, fence: LeaseFence) {
        let this = self;
        while !*shutdown.borrow() {
            match this.clone().relay(shutdown.clone(), fence.clone()).await {
                Ok(()) => return,
                Err(RelayError::Outbox(err @ OutboxStoreError::Fenced { .. })) => {
                    tracing::warn!(sink = this.sink.name(), error = %err, "outbox relay fenced out; another replica relays now");
                    return;
                }
                Err(err) => {
                    tracing::error!(sink = this.sink.name(), error = %err, "outbox relay stopped; restarting from its checkpoint");
                    if !pause_unless_stopped(&mut shutdown, ERROR_BACKOFF).await {
                        return;
                    }
                }
            }
        }
    }

    /// One run from the checkpoint; returns `Ok` on shutdown.
    async fn relay(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, fence: LeaseFence) -> Result<(), RelayError> {
        let sink = self.sink.name().to_owned();
        let checkpoint = self.outbox.checkpoint(&sink).await?;
        let mut state = RelayState::new(checkpoint, fence);
        state.delivered_ahead = self
            .outbox
            .delivered_beyond_checkpoint(&sink)
            .await?
            .into_iter()
            .collect();
        for (subject, head) in self.outbox.parked_subjects(&sink).await? {
            state.held.insert(subject, head);
        }
        let (pages, mut feed) = mpsc::channel(4);
        let reader = tokio::spawn(read_log(self.events.clone(), checkpoint, pages));
        let _stop_reader = AbortOnDrop(reader);
        let mut tasks: JoinSet<RunOutcome> = JoinSet::new();
        let tick = chrono::Duration::from_std(self.settings.tick).unwrap_or(chrono::TimeDelta::MAX);
        let mut next_tick = self.clock.now() + tick;
        self.take_redrives(&mut state, &sink).await?;
        loop {
            while tasks.len() < self.settings.concurrency {
                let Some((subject, run)) = state.next_run() else { break };
                tasks.spawn(deliver_run(self.clone(), subject, run));
            }
            tokio::select! {
                () = stopped(&mut shutdown) => {
                    self.save_checkpoint(&mut state, &sink).await?;
                    return Ok(());
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    let outcome = done.map_err(|err| RelayError::Task(err.to_string()))?;
                    self.finish_run(&mut state, &sink, outcome).await?;
                    if tasks.is_empty() {
                        self.save_checkpoint(&mut state, &sink).await?;
                    }
                }
                page = feed.recv(), if state.outstanding.len() < self.settings.window => {
                    let page = page.ok_or(RelayError::ReaderStopped)??;
                    self.accept(&mut state, &sink, page).await?;
                    if tasks.is_empty() && state.ready.is_empty() {
                        self.save_checkpoint(&mut state, &sink).await?;
                    }
                }
                () = self.clock.sleep_until(next_tick) => {
                    next_tick = self.clock.now() + tick;
                    self.save_checkpoint(&mut state, &sink).await?;
                    self.take_redrives(&mut state, &sink).await?;
                }
                _ = self.redrive_requested.notified() => {
                    self.take_redrives(&mut state, &sink).await?;
                }
            }
        }
    }

    /// Queues the public events of a page; those of held subjects are parked behind them.
    async fn accept(&self, state: &mut RelayState, sink: &str, page: Vec<EventEnvelope>) -> Result<(), RelayError> {
        let mut parked = Vec::new();
        let now = self.clock.now();
        for event in page {
            state.read_position = state.read_position.max(event.position);
            if !is_public(&event) {
                continue;
            }
            let subject = event.aggregate_id().to_owned();
            if let Some(&reached) = state.delivered_ahead.get(&subject) {
                if event.position <= reached {
                    // Delivered before a restart, beyond the checkpoint it restarted from.
                    continue;
                }
                state.delivered_ahead.remove(&subject);
            }
            if let Some(head) = state.held.get(&subject) {
                parked.push(parked_record(
                    sink,
                    &event,
                    0,
                    "held behind an earlier parked event of its subject",
                    Some(*head),
                    now,
                ));
                continue;
            }
            state.outstanding.insert(event.position);
            state.enqueue_back(subject, Outgoing { event, redrive: false });
        }
        if !parked.is_empty() {
            self.outbox.park(parked, &state.fence).await?;
        }
        Ok(())
    }

    /// Records what a delivery task did: delivered events are done, a failure holds its subject
    /// and parks it with everything queued behind it.
    async fn finish_run(&self, state: &mut RelayState, sink: &str, outcome: RunOutcome) -> Result<(), RelayError> {
        let RunOutcome {
            subject,
            delivered,
            failed,
            not_tried,
        } = outcome;
        for item in &delivered {
            if item.redrive {
                self.outbox.unpark(sink, item.event.event_id, &state.fence).await?;
            }
        }
        if let Some(reached) = delivered.iter().map(|item| item.event.position).max() {
            self.outbox
                .record_delivered(sink, &subject, reached, &state.fence)
                .await?;
        }
        let mut finished: Vec<Outgoing> = delivered;
        if let Some((head, attempts, error)) = failed {
            tracing::warn!(sink, subject, event_id = %head.event.event_id, attempts, error, "parking an event that keeps failing");
            let now = self.clock.now();
            let mut records = vec![parked_record(sink, &head.event, attempts, &error, None, now)];
            let behind = not_tried.into_iter().chain(state.take_queue(&subject));
            let mut held: Vec<Outgoing> = Vec::new();
            for item in behind {
                records.push(parked_record(
                    sink,
                    &item.event,
                    0,
                    "held behind an earlier parked event of its subject",
                    Some(head.event.event_id),
                    now,
                ));
                held.push(item);
            }
            self.outbox.park(records, &state.fence).await?;
            state.held.insert(subject.clone(), head.event.event_id);
            finished.push(head);
            finished.extend(held);
        } else {
            debug_assert!(not_tried.is_empty());
        }
        for item in finished {
            if !item.redrive {
                state.outstanding.remove(&item.event.position);
            }
        }
        state.release(&subject);
        Ok(())
    }

    /// Puts the parked events of every subject with a redrive request back in front of its
    /// queue, in position order, and releases the hold.
    async fn take_redrives(&self, state: &mut RelayState, sink: &str) -> Result<(), RelayError> {
        let requests = self.outbox.take_redrive_requests(sink, &state.fence).await?;
        let mut by_subject: HashMap<String, Vec<ParkedEvent>> = HashMap::new();
        for parked in requests {
            by_subject.entry(parked.subject.clone()).or_default().push(parked);
        }
        for (subject, mut parked) in by_subject {
            if !state.held.contains_key(&subject) {
                // Its parked events are being redriven already (a second request while the
                // first is in flight): enqueueing them again could resend them after newer ones.
                continue;
            }
            parked.sort_by_key(|p| p.position);
            let mut events = Vec::with_capacity(parked.len());
            for record in &parked {
                match self.events.read_all(record.position.saturating_sub(1), 1).await?.pop() {
                    Some(event) if event.event_id == record.event_id => events.push(event),
                    _ => {
                        tracing::warn!(sink, event_id = %record.event_id, "a parked event is no longer in the log; forgetting it");
                        self.outbox.unpark(sink, record.event_id, &state.fence).await?;
                    }
                }
            }
            tracing::info!(sink, subject, events = events.len(), "redriving parked events");
            state.held.remove(&subject);
            state.enqueue_front(
                subject,
                events.into_iter().map(|event| Outgoing { event, redrive: true }),
            );
        }
        Ok(())
    }

    async fn save_checkpoint(&self, state: &mut RelayState, sink: &str) -> Result<(), RelayError> {
        let mark = RelayMark {
            checkpoint: state.checkpoint(),
            read_position: state.read_position,
            outstanding: state.outstanding.len() as u64,
        };
        if mark != state.saved {
            self.outbox.save_checkpoint(sink, mark, &state.fence).await?;
            state.saved = mark;
        }
        Ok(())
    }
}

/// The record of `event` parked in `sink`.
fn parked_record(
    sink: &str,
    event: &EventEnvelope,
    attempts: u32,
    error: &str,
    held_behind: Option<Uuid>,
    parked_at: DateTime<Utc>,
) -> ParkedEvent {
    ParkedEvent {
        sink: sink.to_owned(),
        event_id: event.event_id,
        position: event.position,
        subject: event.aggregate_id().to_owned(),
        event_type: event.event_type.clone(),
        attempts,
        last_error: error.to_owned(),
        held_behind,
        parked_at,
        redrive_requested_at: None,
    }
}

/// Delivers a subject's run in order, each event retried with backoff until it is delivered or
/// its attempts run out; stops at the first event that cannot be delivered.
async fn deliver_run(relay: Arc<OutboxRelay>, subject: String, run: Vec<Outgoing>) -> RunOutcome {
    let mut delivered = Vec::with_capacity(run.len());
    let mut remaining = run.into_iter();
    while let Some(item) = remaining.next() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match relay.sink.deliver(&item.event).await {
                Ok(()) => {
                    delivered.push(item);
                    break;
                }
                Err(err) if err.permanent || attempt >= relay.settings.max_attempts => {
                    return RunOutcome {
                        subject,
                        delivered,
                        failed: Some((item, attempt, err.message)),
                        not_tried: remaining.collect(),
                    };
                }
                Err(err) => {
                    let wait = relay.settings.backoff(attempt, UuidV7Ids.random_unit());
                    tracing::debug!(sink = relay.sink.name(), event_id = %item.event.event_id, attempt, error = %err, ?wait, "delivery failed; retrying");
                    relay.clock.sleep(wait).await;
                }
            }
        }
    }
    RunOutcome {
        subject,
        delivered,
        failed: None,
        not_tried: Vec::new(),
    }
}

/// Reads the log after `position` into `pages`, following it live.
async fn read_log(
    events: Arc<dyn EventStore>,
    position: u64,
    pages: mpsc::Sender<Result<Vec<EventEnvelope>, EventStoreError>>,
) {
    let mut subscription = Subscription::new(events, position, PAGE);
    loop {
        let page = subscription.next_batch().await;
        let failed = page.is_err();
        if pages.send(page).await.is_err() || failed {
            return;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The coordinator's bookkeeping.
struct RelayState {
    /// Events waiting per subject, in the order they must go out.
    queues: HashMap<String, VecDeque<Outgoing>>,
    /// Subjects with waiting events and no delivery task, oldest first.
    ready: VecDeque<String>,
    /// Subjects with a delivery task running.
    busy: HashSet<String>,
    /// Subjects with parked events, each with the parked event its new events wait behind.
    held: HashMap<String, Uuid>,
    /// Positions read but neither delivered nor parked.
    outstanding: BTreeSet<u64>,
    /// Subjects delivered beyond the checkpoint before a restart, with the position reached.
    delivered_ahead: HashMap<String, u64>,
    read_position: u64,
    saved: RelayMark,
    /// The lease every write of this run is made under.
    fence: LeaseFence,
}

impl RelayState {
    fn new(checkpoint: u64, fence: LeaseFence) -> Self {
        RelayState {
            fence,
            queues: HashMap::new(),
            ready: VecDeque::new(),
            busy: HashSet::new(),
            held: HashMap::new(),
            outstanding: BTreeSet::new(),
            delivered_ahead: HashMap::new(),
            read_position: checkpoint,
            saved: RelayMark {
                checkpoint,
                read_position: checkpoint,
                outstanding: 0,
            },
        }
    }

    /// Every position up to this one is delivered or parked.
    fn checkpoint(&self) -> u64 {
        self.outstanding.first().map_or(self.read_position, |oldest| oldest - 1)
    }

    fn enqueue_back(&mut self, subject: String, item: Outgoing) {
        let queue = self.queues.entry(subject.clone()).or_default();
        queue.push_back(item);
        if queue.len() == 1 && !self.busy.contains(&subject) {
            self.ready.push_back(subject);
        }
    }

    fn enqueue_front(&mut self, subject: String, items: impl DoubleEndedIterator<Item = Outgoing>) {
        let queue = self.queues.entry(subject.clone()).or_default();
        let was_empty = queue.is_empty();
        for item in items.rev() {
            queue.push_front(item);
        }
        if was_empty && !queue.is_empty() && !self.busy.contains(&subject) {
            self.ready.push_back(subject);
        }
    }

    /// The next subject to deliver and the run of events its task takes.
    fn next_run(&mut self) -> Option<(String, Vec<Outgoing>)> {
        while let Some(subject) = self.ready.pop_front() {
            let Some(queue) = self.queues.get_mut(&subject) else {
                continue;
            };
            if queue.is_empty() || self.busy.contains(&subject) {
                continue;
            }
            let take = queue.len().min(RUN_LENGTH);
            let run: Vec<Outgoing> = queue.drain(..take).collect();
            if queue.is_empty() {
                self.queues.remove(&subject);
            }
            self.busy.insert(subject.clone());
            return Some((subject, run));
        }
        None
    }

    /// Everything still waiting for `subject`.
    fn take_queue(&mut self, subject: &str) -> Vec<Outgoing> {
        self.queues.remove(subject).map(Vec::from).unwrap_or_default()
    }

    /// A subject's task ended: if more of its events wait, it is ready again.
    fn release(&mut self, subject: &str) {
        self.busy.remove(subject);
        if self.queues.get(subject).is_some_and(|queue| !queue.is_empty()) {
            self.ready.push_back(subject.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_fence() -> LeaseFence {
        LeaseFence {
            role: "outbox:test".into(),
            token: 1,
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap_with_equal_jitter() {
        let settings = RelaySettings {
            retry_base: Duration::from_millis(100),
            retry_cap: Duration::from_secs(1),
            ..RelaySettings::default()
        };
        assert_eq!(settings.backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(settings.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(settings.backoff(3, 0.0), Duration::from_millis(200));
        assert_eq!(settings.backoff(10, 0.0), Duration::from_millis(500));
        assert_eq!(settings.backoff(40, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn the_checkpoint_stays_before_the_oldest_outstanding_event() {
        let mut state = RelayState::new(10, test_fence());
        assert_eq!(state.checkpoint(), 10);
        state.read_position = 20;
        state.outstanding.extend([14, 17]);
        assert_eq!(state.checkpoint(), 13);
        state.outstanding.remove(&14);
        assert_eq!(state.checkpoint(), 16);
        state.outstanding.clear();
        assert_eq!(state.checkpoint(), 20);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever is read and in whatever order events are delivered or parked, the
            /// checkpoint never passes an event still outstanding, and never moves back.
            #[test]
            fn the_checkpoint_never_passes_an_undelivered_event(
                steps in proptest::collection::vec((any::<bool>(), 0usize..64), 1..300),
            ) {
                let mut state = RelayState::new(0, test_fence());
                let mut previous = state.checkpoint();
                for (read, pick) in steps {
                    if read || state.outstanding.is_empty() {
                        state.read_position += 1;
                        state.outstanding.insert(state.read_position);
                    } else {
                        let done = *state.outstanding.iter().nth(pick % state.outstanding.len()).unwrap();
                        state.outstanding.remove(&done);
                    }
                    let checkpoint = state.checkpoint();
                    prop_assert!(state.outstanding.iter().all(|p| *p > checkpoint));
                    prop_assert!(checkpoint <= state.read_position);
                    prop_assert!(checkpoint >= previous, "moved back from {previous} to {checkpoint}");
                    previous = checkpoint;
                }
            }

            /// A delivery retry waits between half and all of `base × 2^(attempt−1)`, capped.
            #[test]
            fn delivery_retries_stay_within_their_bounds(
                base_ms in 1u64..10_000,
                cap_ms in 1u64..600_000,
                attempt in 1u32..100,
                jitter in 0.0f64..=1.0,
            ) {
                let settings = RelaySettings {
                    retry_base: Duration::from_millis(base_ms),
                    retry_cap: Duration::from_millis(cap_ms),
                    ..RelaySettings::default()
                };
                let wait = settings.backoff(attempt, jitter);
                let full = Duration::from_millis(base_ms).saturating_mul(1 << attempt.saturating_sub(1).min(30)).min(Duration::from_millis(cap_ms));
                prop_assert!(wait >= full / 2 && wait <= full, "{wait:?} for {full:?}");
            }
        }
    }
}
