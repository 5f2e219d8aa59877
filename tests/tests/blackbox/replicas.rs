//! Several replicas on one set of engines, as separate processes: two `lablet serve` on one
//! PostgreSQL database, and two on one embedded data directory (a zero-downtime restart).
//! Sixteen writers post lab observations to both; then every lab is read back from both with
//! read-your-writes, and its history holds exactly the newest operations acknowledged for it:
//! none doubled, none missing. Also: the replica holding the roles is killed (SIGKILL) and
//! another takes every role over within the lease time; and a paused holder's late commits
//! are refused by the fences. A CloudEvents sink takes the outbox through all of it: every
//! event arrives, in order per subject, and the repeats the failovers cause are reported.

use lablet_tests::postgres::TestDatabase;
use lablet_tests::process::{free_port, start_server};
use lablet_tests::server::{admin_client, get_json, wait_ready};
use lablet_tests::sink::{assert_in_order_per_subject, repeated_deliveries, wait_for_delivery, TestSink};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");
const WRITERS: usize = 16;
const LABS: usize = 40;
const OBSERVATIONS_PER_WRITER: usize = 75;
const WORKER: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const STATES: [&str; 3] = ["STARTED", "STOPPED", "BOOTED"];
/// Short leases, so that the failover test waits seconds, not tens of seconds.
const LEASES: [(&str, &str); 2] = [("LABLET_LEASE_TTL_MS", "2000"), ("LABLET_LEASE_RENEW_MS", "500")];

/// A replica process, killed when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Replica {
    async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Replica {
        let port = free_port();
        let child = start_server(LABLET, data_dir, port, env);
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;
        Replica { child, base }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writer `writer` posts its observations of round `round`, alternating between the replicas;
/// answers each acknowledged change as (lab record id, position).
async fn write(client: reqwest::Client, bases: Vec<String>, writer: usize, round: usize) -> Vec<(String, u64)> {
    let mut acknowledged = Vec::new();
    for i in 0..OBSERVATIONS_PER_WRITER {
        let base = &bases[(writer + i) % bases.len()];
        let body = json!({
            "worker_id": WORKER,
            "lab_id": format!("lab-{:02}", (writer * 7 + i) % LABS),
            // Varies along each lab's observations (not only from lab to lab), so that most of
            // them change the lab and are in its history.
            "state": STATES[(i + 2 * writer + round) % STATES.len()],
        });
        let answer = client
            .post(format!("{base}/api/v1/lab-records/observations"))
            .json(&body)
            .send()
            .await
            .expect("the replica answers");
        assert_eq!(answer.status(), 200, "an observation is accepted");
        let outcome: Value = answer.json().await.expect("JSON");
        if outcome["changed"] == true {
            let id = outcome["id"].as_str().expect("an id").to_owned();
            acknowledged.push((id, outcome["position"].as_u64().expect("a position")));
        }
    }
    acknowledged
}

/// Positions acknowledged per lab record.
type Acknowledged = BTreeMap<String, BTreeSet<u64>>;

/// Sixteen writers over `replicas`; adds what they acknowledged to `by_lab`.
async fn write_all(client: &reqwest::Client, replicas: &[&Replica], round: usize, by_lab: &mut Acknowledged) {
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write(client.clone(), bases.clone(), writer, round)))
        .collect();
    for writer in writers {
        for (id, position) in writer.await.expect("a writer") {
            assert!(
                by_lab.entry(id).or_default().insert(position),
                "a position acknowledged twice"
            );
        }
    }
}

/// Every lab read back from every replica with read-your-writes: its history is exactly the
/// newest 50 positions acknowledged for it.
async fn every_acknowledged_change_is_in_each_history_once(
    client: &reqwest::Client,
    replicas: &[&Replica],
    by_lab: &Acknowledged,
) {
    let highest = by_lab
        .values()
        .flat_map(|p| p.iter().copied())
        .max()
        .unwrap_or_else(|| panic!("changes were made: {by_lab:?}"));
    for replica in replicas {
        for (id, positions) in by_lab {
            let answer = client
                .get(format!("{}/api/v1/lab-records/{id}", replica.base))
                .header("lablet-min-position", highest.to_string())
                .send()
                .await
                .expect("the replica answers");
            assert_eq!(answer.status(), 200, "read-your-writes on {}", replica.base);
            let document: Value = answer.json().await.expect("JSON");
            let history: Vec<u64> = document["operation_history"]
                .as_array()
                .expect("a history")
                .iter()
                .map(|entry| entry["position"].as_u64().expect("a position"))
                .collect();
            let newest: Vec<u64> = positions.iter().copied().rev().take(50).rev().collect();
            assert_eq!(
                history, newest,
                "lab {id} on {}: the newest operations, each once",
                replica.base
            );
        }
    }
}

/// The roles each replica holds, from `/metrics`.
async fn roles_held(client: &reqwest::Client, replica: &Replica) -> BTreeSet<String> {
    let text = client
        .get(format!("{}/metrics", replica.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter_map(|line| line.strip_prefix("lablet_lease_held{role=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .filter(|(_, value)| *value == "1")
        .map(|(role, _)| role.to_owned())
        .collect()
}

/// Kills the replica that holds the roles; the other takes them all within the lease time and
/// serves new writes with read-your-writes.
async fn the_survivor_takes_every_role_over(client: &reqwest::Client, holder: Replica, survivor: &Replica) {
    let roles = roles_held(client, &holder).await;
    assert!(
        roles.contains("projection:lab_records"),
        "the first replica holds the roles: {roles:?}"
    );
    // Writes go on through the kill, so that the outbox is delivering when its holder dies.
    let writing = {
        let (client, base) = (client.clone(), survivor.base.clone());
        tokio::spawn(async move { write(client, vec![base], 5, 3).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(holder); // SIGKILL
    let killed_at = Instant::now();
    loop {
        let held = roles_held(client, survivor).await;
        if roles.is_subset(&held) {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "roles not taken over: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!writing.await.expect("the writer").is_empty(), "the writes went on");
    let cluster = get_json(client, &format!("{}/api/v1/cluster", survivor.base)).await;
    assert!(
        cluster["leases"]
            .as_array()
            .expect("leases")
            .iter()
            .all(|l| l["token"].as_u64() >= Some(2)),
        "every role changed hands: {cluster}"
    );
    let body = json!({"worker_id": WORKER, "lab_id": "after-failover", "state": "STARTED"});
    let answer = client
        .post(format!("{}/api/v1/lab-records/observations", survivor.base))
        .json(&body)
        .send()
        .await
        .expect("answer");
    let outcome: Value = answer.json().await.expect("JSON");
    let document = client
        .get(format!(
            "{}/api/v1/lab-records/{}",
            survivor.base,
            outcome["id"].as_str().unwrap()
        ))
        .header("lablet-min-position", outcome["position"].to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(document.status(), 200, "the survivor projects new writes");
}

fn signal(replica: &Replica, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &replica.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal}");
}

/// Pauses (SIGSTOP) the replica holding the roles while writes go on, past its lease; the
/// other takes the roles; then the paused one wakes (SIGCONT): whatever it held in flight is
/// refused by the fences, it gives its roles up, and every history is still exact.
async fn a_paused_holder_wakes_up_fenced_out(
    client: &reqwest::Client,
    holder: &Replica,
    other: &Replica,
    labs: Vec<String>,
) {
    let roles = roles_held(client, holder).await;
    assert!(!roles.is_empty(), "the holder holds roles");
    let mut by_lab = Acknowledged::new();
    let writing = {
        let (client, base) = (client.clone(), other.base.clone());
        tokio::spawn(async move { write(client, vec![base], 3, 1).await })
    };
    signal(holder, "-STOP");
    let paused_at = Instant::now();
    loop {
        if roles.is_subset(&roles_held(client, other).await) {
            break;
        }
        assert!(
            paused_at.elapsed() < Duration::from_secs(15),
            "the roles were not taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (id, position) in writing.await.expect("the writer") {
        by_lab.entry(id).or_default().insert(position);
    }
    signal(holder, "-CONT");
    let woken_at = Instant::now();
    while !roles_held(client, holder).await.is_empty() {
        assert!(
            woken_at.elapsed() < Duration::from_secs(15),
            "the woken replica kept its roles"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    write_all(client, &[holder, other], 2, &mut by_lab).await;
    let full = full_history(client, other, &labs).await;
    every_acknowledged_change_is_in_each_history_once(client, &[holder, other], &full).await;
}

/// What every lab's stream holds, from the audit API: the positions of all its events.
async fn full_history(client: &reqwest::Client, replica: &Replica, ids: &[String]) -> Acknowledged {
    let mut all = Acknowledged::new();
    for id in ids {
        let page = get_json(
            client,
            &format!("{}/api/v1/audit/streams/lab_record-{id}?limit=1000", replica.base),
        )
        .await;
        let positions = page["items"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["position"].as_u64().expect("a position"))
            .collect();
        all.insert(id.clone(), positions);
    }
    all
}

/// The whole story on the stores `stores` names: two replicas, sixteen writers, exact
/// histories from both, a paused holder fenced out, the survivor of a kill taking every role,
/// and every event at the sink in order.
async fn two_replicas_on(stores: &[(&str, &str)], engine: &str) {
    let data_dir = tempfile::tempdir().unwrap();
    let client = admin_client(data_dir.path());
    let sink = TestSink::default();
    let sink_url = sink.start().await;
    let env = replica_env(&sink_url, stores);
    let first = Replica::start(data_dir.path(), &env).await;
    let second = Replica::start(data_dir.path(), &env).await;
    let mut by_lab = Acknowledged::new();
    write_all(&client, &[&first, &second], 0, &mut by_lab).await;
    every_acknowledged_change_is_in_each_history_once(&client, &[&first, &second], &by_lab).await;
    a_paused_holder_wakes_up_fenced_out(&client, &first, &second, by_lab.into_keys().collect()).await;
    // The woken replica is a standby now; without it, the next survivor must take every role.
    drop(first);
    let survivor = Replica::start(data_dir.path(), &env).await;
    the_survivor_takes_every_role_over(&client, second, &survivor).await;
    every_event_reached_the_sink_in_order(&client, &survivor, &sink, engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database() {
    let Some(database) = TestDatabase::create("two_replicas").await else {
        return;
    };
    let url = database.url().to_owned();
    let stores = [
        ("LABLET_EVENT_STORE_URL", url.as_str()),
        ("LABLET_READ_MODEL_URL", url.as_str()),
    ];
    two_replicas_on(&stores, "PostgreSQL").await;
    database.drop_now().await;
}

/// Every event id of the log, through the audit API.
async fn log_event_ids(client: &reqwest::Client, replica: &Replica) -> HashSet<String> {
    let (mut ids, mut from) = (HashSet::new(), 0);
    loop {
        let page = get_json(
            client,
            &format!("{}/api/v1/audit/events?from_position={from}&limit=1000", replica.base),
        )
        .await;
        let items = page["items"].as_array().expect("events");
        for item in items {
            ids.insert(item["event_id"].as_str().expect("an id").to_owned());
        }
        match items.last() {
            Some(last) if items.len() == 1000 => from = last["position"].as_u64().expect("a position"),
            _ => return ids,
        }
    }
}

/// After the pause and the kill: the sink has every event of the log, in order per subject;
/// reports how many deliveries the failovers repeated.
async fn every_event_reached_the_sink_in_order(
    client: &reqwest::Client,
    replica: &Replica,
    sink: &TestSink,
    engine: &str,
) {
    let wanted = log_event_ids(client, replica).await;
    wait_for_delivery(sink, &wanted, 60).await;
    let received = sink.received();
    assert_in_order_per_subject(&received);
    lablet_tests::report_measure(
        &format!("outbox deliveries repeated through a pause and a kill of the holder ({engine})"),
        &format!("{} of {} events", repeated_deliveries(&received), wanted.len()),
    );
}

/// The replicas' environment: short leases and the sink at `sink_url`, plus `stores`.
fn replica_env<'a>(sink_url: &'a str, stores: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = stores.to_vec();
    env.extend(LEASES);
    env.extend([
        ("LABLET_CLOUDEVENTS_SINK_URL", sink_url),
        ("LABLET_OUTBOX_RETRY_BASE_MS", "2"),
        ("LABLET_OUTBOX_RETRY_MAX_MS", "20"),
    ]);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_data_directory() {
    two_replicas_on(&[], "SQLite").await;
}

/// The same on a PostgreSQL log with the read models (and the leases) on MongoDB, when
/// `LABLET_TEST_MONGODB_URL` names a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_and_mongodb() {
    use crate::mongo_contracts::{drop_database, fresh_database, server_url};
    let Some(server) = server_url("two_replicas_on_postgres_and_mongodb") else {
        return;
    };
    let Some(database) = TestDatabase::create("two_replicas_mongodb").await else {
        return;
    };
    let (log, read_models) = (database.url().to_owned(), fresh_database(&server).await);
    let stores = [
        ("LABLET_EVENT_STORE_URL", log.as_str()),
        ("LABLET_READ_MODEL_URL", read_models.as_str()),
    ];
    two_replicas_on(&stores, "PostgreSQL and MongoDB").await;
    drop_database(&read_models).await;
    database.drop_now().await;
}

/// A singleton job's command made under a lease another replica has taken since is refused
/// before anything is appended; the new holder's goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_under_a_superseded_lease_is_refused() {
    use chrono::{TimeDelta, Utc};
    use lablet_application::ports::{EventStore, LeaseFence, LeaseStore, SystemClock};
    use lablet_application::repository::AggregateRepository;
    use lablet_application::{AppError, RequestContext};
    use lablet_domain::values::Name;
    use lablet_domain::worker::{Capacity, Registration, Worker, WorkerCommand};
    use lablet_infrastructure::sqlite::{SqliteEventStore, SqliteLeaseStore};
    use lablet_migrations::sqlite::{migrate_file, EVENT_STORE, READ_MODELS};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let (log, read_models) = (dir.path().join("lablet.db"), dir.path().join("read_models.db"));
    migrate_file(&log, EVENT_STORE).unwrap();
    migrate_file(&read_models, READ_MODELS).unwrap();
    let events = Arc::new(SqliteEventStore::open(&log).unwrap());
    let leases = Arc::new(SqliteLeaseStore::open(&read_models).unwrap());
    let repository = AggregateRepository::new(events.clone(), Arc::new(SystemClock)).with_leases(leases.clone());
    let now = Utc::now();
    let old = leases
        .acquire("fleet", "replica-a", now, now + TimeDelta::seconds(1))
        .await
        .unwrap()
        .expect("free");
    let later = now + TimeDelta::seconds(2);
    let new = leases
        .acquire("fleet", "replica-b", later, later + TimeDelta::seconds(10))
        .await
        .unwrap()
        .expect("expired");
    let register = WorkerCommand::Register(Registration {
        name: Name::parse("w").unwrap(),
        region: Name::parse("r").unwrap(),
        endpoint: None,
        template_name: None,
        instance_id: None,
        declared_capacity: Capacity::default(),
        insecure_tls: false,
    });
    let id = uuid::Uuid::now_v7();
    let stale = repository
        .execute::<Worker>(id, &register, &RequestContext::system_under(&LeaseFence::from(&old)))
        .await;
    assert!(
        matches!(
            stale,
            Err(AppError::Fenced {
                token: 1,
                current: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    assert_eq!(events.head_position().await.unwrap(), 0, "nothing was appended");
    let fresh = repository
        .execute::<Worker>(id, &register, &RequestContext::system_under(&LeaseFence::from(&new)))
        .await;
    assert!(fresh.is_ok(), "{fresh:?}");
    assert_eq!(events.head_position().await.unwrap(), 1);
}
