//! Work orders through their whole life (submit, claim, start, complete) by no-op executors, on
//! a running application: through the mediator (the port every executor claims through) or over
//! HTTP; and the latency from submission to claim at a steady rate. Every run is checked
//! against the log: each order completed exactly once.

use lablet_application::ports::EventStore;
use lablet_application::work_orders::{ClaimWorkOrder, ClaimedOrder};
use lablet_application::{Execute, Mediator, RequestContext};
use lablet_domain::values::{Bounded, Name};
use lablet_domain::work_order::{ResourceNeeds, Submission, WorkOrder, WorkOrderCommand};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::stats::Latencies;

/// The kind the bench submits (no built-in executor runs it).
pub const KIND: &str = "bench.noop";

/// Attempts an order gets: enough that executors killed over and over do not exhaust them.
const ATTEMPTS: u32 = 25;

/// How executors reach Lablet.
#[derive(Clone)]
pub enum Channel {
    Port(Arc<Mediator>),
    Http { client: reqwest::Client, base: String },
}

impl Channel {
    async fn submit(&self, n: usize) -> Uuid {
        match self {
            Channel::Port(mediator) => {
                let submission = Submission {
                    kind: Name::parse(KIND).expect("a kind"),
                    payload: json!({"n": n}),
                    priority: 0,
                    max_attempts: Bounded::new_const(ATTEMPTS),
                    resources: ResourceNeeds::default(),
                    unique_key: None,
                };
                let command = Execute::<WorkOrder>::create(WorkOrderCommand::Submit(submission));
                mediator
                    .send(command, &RequestContext::system())
                    .await
                    .expect("submitted")
                    .id
            }
            Channel::Http { client, base } => {
                let answer: Value = client
                    .post(format!("{base}/api/v1/work-orders"))
                    .json(&json!({"kind": KIND, "payload": {"n": n}, "max_attempts": ATTEMPTS}))
                    .send()
                    .await
                    .expect("the server answers")
                    .json()
                    .await
                    .expect("JSON");
                answer["id"].as_str().and_then(|id| id.parse().ok()).expect("an id")
            }
        }
    }

    async fn claim(&self, executor: &str, lease_seconds: u32) -> Option<(Uuid, u32)> {
        match self {
            Channel::Port(mediator) => {
                let request = ClaimWorkOrder {
                    executor: Name::parse(executor).expect("a name"),
                    kinds: vec![Name::parse(KIND).expect("a kind")],
                    capacity: None,
                    wait_ms: Bounded::new_const(200),
                    lease_seconds: Bounded::parse(lease_seconds).ok()?,
                };
                let order: Option<ClaimedOrder> = mediator.send(request, &RequestContext::system()).await.ok()?;
                order.map(|order| (order.id, order.token))
            }
            Channel::Http { client, base } => {
                let answer: Value = client
                    .post(format!("{base}/api/v1/work-orders/claim"))
                    .json(
                        &json!({"executor": executor, "kinds": [KIND], "wait_ms": 200, "lease_seconds": lease_seconds}),
                    )
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                let order = &answer["order"];
                Some((order["id"].as_str()?.parse().ok()?, order["token"].as_u64()? as u32))
            }
        }
    }

    async fn act(&self, id: Uuid, action: &str, body: Value, command: WorkOrderCommand) -> bool {
        match self {
            Channel::Port(mediator) => mediator
                .send(Execute::<WorkOrder>::on(id, command), &RequestContext::system())
                .await
                .is_ok(),
            Channel::Http { client, base } => client
                .post(format!("{base}/api/v1/work-orders/{id}/{action}"))
                .json(&body)
                .send()
                .await
                .is_ok_and(|answer| answer.status().is_success()),
        }
    }

    /// Starts and completes a claimed order; answers whether both were accepted.
    async fn run(&self, executor: &str, id: Uuid, token: u32) -> bool {
        let start = WorkOrderCommand::Start {
            executor: Name::parse(executor).expect("a name"),
            token,
        };
        if !self
            .act(id, "start", json!({"executor": executor, "token": token}), start)
            .await
        {
            return false;
        }
        let complete = WorkOrderCommand::Complete {
            token,
            result: Value::Null,
        };
        self.act(id, "complete", json!({"token": token}), complete).await
    }
}

/// What a throughput run measured.
pub struct Throughput {
    pub orders: usize,
    pub seconds: f64,
    /// Claims answered by the claim that the order then refused (none expected).
    pub refused: usize,
}

/// `orders` submitted by 16 submitters while `executors` executors claim, start and complete
/// them, until every one is completed.
pub async fn throughput(channel: &Channel, orders: usize, executors: usize) -> Throughput {
    let done = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for e in 0..executors {
        let (channel, done, refused) = (channel.clone(), done.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let executor = format!("bench-{e}");
            while done.load(Ordering::Relaxed) < orders {
                if let Some((id, token)) = channel.claim(&executor, 60).await {
                    if channel.run(&executor, id, token).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..16)
        .map(|_| {
            let (channel, next) = (channel.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= orders {
                        return;
                    }
                    channel.submit(n).await;
                }
            })
        })
        .collect();
    for task in submitters.into_iter().chain(tasks) {
        task.await.expect("a bench task");
    }
    Throughput {
        orders,
        seconds: started.elapsed().as_secs_f64(),
        refused: refused.load(Ordering::Relaxed),
    }
}

/// Submits `orders` at `rate` a second while `executors` claim them; the time from each
/// submission to its claim.
pub async fn claim_latency(channel: &Channel, orders: usize, rate: u32, executors: usize) -> Latencies {
    let submitted: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let claimed: Arc<Mutex<Vec<(Uuid, Instant)>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for e in 0..executors {
        let (channel, claimed, done) = (channel.clone(), claimed.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let executor = format!("latency-{e}");
            while done.load(Ordering::Relaxed) < orders {
                if let Some((id, token)) = channel.claim(&executor, 60).await {
                    claimed.lock().expect("a lock").push((id, Instant::now()));
                    channel.run(&executor, id, token).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    for n in 0..orders {
        ticks.tick().await;
        let sent = Instant::now();
        let id = channel.submit(n).await;
        submitted.lock().expect("a lock").insert(id, sent);
    }
    for task in tasks {
        task.await.expect("a bench task");
    }
    let submitted = submitted.lock().expect("a lock");
    let mut latencies = Latencies::default();
    for (id, at) in claimed.lock().expect("a lock").iter() {
        if let Some(sent) = submitted.get(id) {
            latencies.record(at.saturating_duration_since(*sent));
        }
    }
    latencies
}

/// What the log says of the orders: how many were completed, how many more than once, and how
/// many were leased more than once (an attempt run again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCount {
    pub completed: usize,
    /// Failed for good (attempts exhausted).
    pub failed: usize,
    pub completed_twice: usize,
    pub run_again: usize,
}

pub async fn count_in_log(events: &Arc<dyn EventStore>) -> LogCount {
    let (mut completions, mut leases): (HashMap<String, usize>, HashMap<String, usize>) = Default::default();
    let mut failed = 0;
    let mut after = 0;
    loop {
        let page = events.read_all(after, 5_000).await.expect("the log reads");
        let Some(last) = page.last() else { break };
        after = last.position;
        for envelope in &page {
            let counted = match envelope.event_type.as_str() {
                "work_order.completed" => &mut completions,
                "work_order.leased" => &mut leases,
                "work_order.failed" => {
                    failed += 1;
                    continue;
                }
                _ => continue,
            };
            *counted.entry(envelope.stream.clone()).or_default() += 1;
        }
    }
    LogCount {
        completed: completions.len(),
        failed,
        completed_twice: completions.values().filter(|count| **count > 1).count(),
        run_again: leases.values().filter(|count| **count > 1).count(),
    }
}

/// A remote executor (its own process, over HTTP) with `lease_seconds` leases, until killed.
pub async fn remote_executor(channel: Channel, name: String, lease_seconds: u32) {
    loop {
        if let Some((id, token)) = channel.claim(&name, lease_seconds).await {
            channel.run(&name, id, token).await;
        }
    }
}

/// What the run under kills measured.
pub struct KillRun {
    pub kills: usize,
    pub count: LogCount,
    /// From the last kill until every order was final.
    pub settled_after: Duration,
}

/// `orders` submitted up front (on a log with `already` completed), run by `executors` executor
/// processes (`spawn` starts one); every `every`, one at random is killed with SIGKILL and
/// replaced, until half the orders are completed; then the time until all are.
pub async fn kill_run(
    channel: &Channel,
    events: &Arc<dyn EventStore>,
    (orders, already): (usize, usize),
    executors: usize,
    every: Duration,
    spawn: impl Fn(usize) -> std::process::Child,
) -> KillRun {
    for n in 0..orders {
        channel.submit(n).await;
    }
    let mut children: Vec<std::process::Child> = (0..executors).map(&spawn).collect();
    let (mut kills, mut seed, mut last_kill) = (0usize, 0x9e37_79b9_u64, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        tokio::time::sleep(every).await;
        let count = count_in_log(events).await;
        if count.completed + count.failed >= already + orders || Instant::now() > deadline {
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            return KillRun {
                kills,
                count,
                settled_after: last_kill.elapsed(),
            };
        }
        if count.completed < already + orders / 2 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let victim = (seed >> 33) as usize % children.len();
            let _ = children[victim].kill();
            let _ = children[victim].wait();
            children[victim] = spawn(executors + kills);
            kills += 1;
            last_kill = Instant::now();
        }
    }
}
