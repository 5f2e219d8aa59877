//! `lablet projections rebuild --all` on each read-model store while a server on the same
//! stores serves, writes and delivers CloudEvents: every projection is swapped in, the server
//! follows the swap (its next writes show up, read-your-writes holds), a verify afterwards
//! finds nothing that differs from a replay, and the sink receives every event exactly once:
//! a rebuild never causes a CloudEvent to be sent again.

use lablet_tests::postgres::TestDatabase;
use lablet_tests::process::{free_port, run_cli_with, start_server, CliOutput};
use lablet_tests::server::{admin_client, get_json, wait_ready};
use lablet_tests::sink::TestSink;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");
const WORKER: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const LABS: usize = 10;

/// The server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Posts `count` observations (labs in turn, states alternating from `round`); answers the
/// last state acknowledged per lab record id and the highest position acknowledged.
async fn observe(client: reqwest::Client, base: String, round: usize, count: usize) -> (BTreeMap<String, String>, u64) {
    let (mut states, mut highest) = (BTreeMap::new(), 0);
    for i in 0..count {
        let state = if (i / LABS + round).is_multiple_of(2) {
            "STARTED"
        } else {
            "STOPPED"
        };
        let body = json!({"worker_id": WORKER, "lab_id": format!("lab-{}", i % LABS), "state": state});
        let answer = client
            .post(format!("{base}/api/v1/lab-records/observations"))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(answer.status(), 200, "an observation is accepted");
        let outcome: Value = answer.json().await.expect("JSON");
        states.insert(outcome["id"].as_str().expect("an id").to_owned(), state.to_owned());
        highest = highest.max(outcome["position"].as_u64().unwrap_or(0));
    }
    (states, highest)
}

/// Waits until every sink has delivered up to the head of the log.
async fn outbox_drained(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let outbox = get_json(client, &format!("{base}/api/v1/outbox")).await;
        let sinks = outbox["sinks"].as_array().cloned().unwrap_or_default();
        let head = outbox["head_position"].as_u64();
        if !sinks.is_empty() && sinks.iter().all(|s| s["lag"] == 0 && s["checkpoint"].as_u64() == head) {
            return;
        }
        assert!(Instant::now() < deadline, "the outbox never drained: {outbox}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cli(data_dir: &Path, env: &[(&'static str, String)], args: &'static [&'static str]) -> CliOutput {
    let (data_dir, env) = (data_dir.to_owned(), env.to_vec());
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_cli_with(LABLET, &data_dir, args, &env)
    })
    .await
    .expect("the command ran")
}

/// The scenario of this module on the stores `env` names.
async fn a_rebuild_while_serving_swaps_in_and_sends_nothing_again(env: Vec<(&'static str, String)>) {
    let data_dir = tempfile::tempdir().unwrap();
    let sink = TestSink::default();
    let mut server_env = env.clone();
    server_env.push(("LABLET_CLOUDEVENTS_SINK_URL", sink.start().await));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pairs: Vec<(&str, &str)> = server_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _server = Server(start_server(LABLET, data_dir.path(), port, &pairs));
    let client = admin_client(data_dir.path());
    wait_ready(&client, &format!("{base}/health/ready")).await;
    client
        .post(format!("{base}/api/v1/work-orders"))
        .json(&json!({"kind": "mail.send"}))
        .send()
        .await
        .expect("the server answers");

    let (mut states, _) = observe(client.clone(), base.clone(), 0, 60).await;
    outbox_drained(&client, &base).await;
    // Writes go on while every projection is rebuilt and swapped in.
    let writer = tokio::spawn(observe(client.clone(), base.clone(), 1, 150));
    let rebuilt = cli(data_dir.path(), &env, &["projections", "rebuild", "--all"]).await;
    assert_eq!(rebuilt.code, Some(0), "{}{}", rebuilt.stdout, rebuilt.stderr);
    for projector in lablet_projections::standard_projectors() {
        let projection = projector.collection().name;
        assert!(
            rebuilt
                .stderr
                .lines()
                .any(|l| l.starts_with(&format!("{projection}: replayed")) && l.contains("swapped in")),
            "{projection} swapped in: {}",
            rebuilt.stderr
        );
    }
    let (during, _) = writer.await.expect("the writer");
    states.extend(during);
    let (after, highest) = observe(client.clone(), base.clone(), 2, 20).await;
    states.extend(after);

    for (id, state) in &states {
        let answer = client
            .get(format!("{base}/api/v1/lab-records/{id}"))
            .header("lablet-min-position", highest.to_string())
            .send()
            .await
            .expect("the server answers");
        assert_eq!(answer.status(), 200, "the server follows the swapped-in projection");
        let document: Value = answer.json().await.expect("JSON");
        assert_eq!(&document["state"], state, "{id} holds its last acknowledged state");
    }
    let verified = cli(data_dir.path(), &env, &["projections", "rebuild", "--all", "--verify"]).await;
    assert_eq!(
        verified.code,
        Some(0),
        "the live read models equal a replay: {}{}",
        verified.stdout,
        verified.stderr
    );

    outbox_drained(&client, &base).await;
    let mut deliveries: HashMap<String, usize> = HashMap::new();
    for received in sink.received() {
        *deliveries.entry(received.id).or_default() += 1;
    }
    let repeated: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "events sent again: {repeated:?}");
    let head = get_json(&client, &format!("{base}/api/v1/outbox")).await["head_position"]
        .as_u64()
        .expect("a head");
    assert_eq!(deliveries.len() as u64, head, "every event of the log was sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_on_sqlite_while_serving_swaps_in_and_sends_nothing_again() {
    a_rebuild_while_serving_swaps_in_and_sends_nothing_again(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_on_postgres_while_serving_swaps_in_and_sends_nothing_again() {
    let Some(database) = TestDatabase::create("a_rebuild_on_postgres_while_serving").await else {
        return;
    };
    let url = database.url().to_owned();
    a_rebuild_while_serving_swaps_in_and_sends_nothing_again(vec![
        ("LABLET_EVENT_STORE_URL", url.clone()),
        ("LABLET_READ_MODEL_URL", url),
    ])
    .await;
    database.drop_now().await;
}
