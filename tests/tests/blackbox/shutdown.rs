//! SIGTERM under load: the server says it is going (`Connection: close` on every answer, as a
//! load balancer would see from its failing readiness), then stops accepting connections,
//! finishes the requests in flight, lets its background tasks commit, and exits 0; every
//! acknowledged command is in the log and no request was cut off.

use crate::crash::{assert_every_acknowledged_command_is_logged, command};
use lablet_tests::process::{free_port, start_server};
use lablet_tests::server::{activate_definition, wait_ready, ActiveDefinition, TEST_SYNC_INTERVAL_MS};
use rusqlite::Connection;
use serde_json::Value;
use std::time::{Duration, Instant};

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");
const WRITERS: usize = 16;

/// What one writer saw: acknowledged (stream, version, position), and requests that reached
/// the server but ended without an answer (a reset, a connection closed mid-request).
#[derive(Default)]
struct Seen {
    acknowledged: Vec<(String, u64, u64)>,
    cut_off: Vec<String>,
}

/// Sends commands until the server says it is going (or refuses the connection), as a client
/// behind a load balancer would be moved elsewhere.
async fn write_until_refused(
    client: reqwest::Client,
    base: String,
    writer: usize,
    definition: ActiveDefinition,
) -> Seen {
    let mut seen = Seen::default();
    for i in 0.. {
        let (path, body, kind) = command(writer, i, &definition);
        let response = match client.post(format!("{base}{path}")).json(&body).send().await {
            Ok(response) => response,
            // The listener is closed: the request never reached the server.
            Err(err) if err.is_connect() => break,
            Err(err) => {
                seen.cut_off.push(format!("{err:?}"));
                break;
            }
        };
        let status = response.status();
        let going = response.headers().get("connection").is_some_and(|v| v == "close");
        let outcome = match response.json::<Value>().await {
            Ok(outcome) => outcome,
            Err(err) => {
                seen.cut_off.push(format!("{status}: {err}"));
                break;
            }
        };
        if status.is_success() && outcome["changed"] != false {
            seen.acknowledged.push((
                format!("{kind}-{}", outcome["id"].as_str().unwrap()),
                outcome["version"].as_u64().unwrap(),
                outcome["position"].as_u64().unwrap(),
            ));
        }
        if going {
            break;
        }
    }
    seen
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_what_it_took_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let token = lablet_tests::server::token(
        &lablet_infrastructure::Settings::defaults_in(dir.path()),
        "test-admin",
        &[lablet_api::auth::Role::Admin],
    );
    let client = lablet_tests::server::client_with_token(&token);
    let port = free_port();
    let sync = TEST_SYNC_INTERVAL_MS.to_string();
    let mut server = start_server(
        LABLET,
        dir.path(),
        port,
        &[("LABLET_DEFINITION_SYNC_INTERVAL_MS", &sync)],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &format!("{base}/health/ready")).await;
    let definition = activate_definition(&client, &base, dir.path(), "ospf").await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write_until_refused(client.clone(), base.clone(), w, definition.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let asked = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "a SIGTERM is a clean exit: {status}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "stopped in {:?}",
        asked.elapsed()
    );

    let mut acknowledged = Vec::new();
    let mut cut_off = Vec::new();
    for writer in writers {
        let seen = writer.await.unwrap();
        acknowledged.extend(seen.acknowledged);
        cut_off.extend(seen.cut_off);
    }
    assert!(
        acknowledged.len() > 100,
        "the server was busy ({} acknowledged)",
        acknowledged.len()
    );
    assert!(cut_off.is_empty(), "requests cut off by the shutdown: {cut_off:?}");

    let log = Connection::open(dir.path().join("lablet.db")).unwrap();
    assert_every_acknowledged_command_is_logged(&log, &acknowledged);
    // The projections committed what they had applied: their checkpoints are durable and none
    // is past the log.
    let head: i64 = log
        .query_row("SELECT max(position) FROM events", [], |r| r.get(0))
        .unwrap();
    let read_models = Connection::open(dir.path().join("read_models.db")).unwrap();
    let checkpoint: i64 = read_models
        .query_row(
            "SELECT position FROM projection_checkpoints WHERE name = 'lab_records'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        checkpoint > 0 && checkpoint <= head,
        "checkpoint {checkpoint}, head {head}"
    );
}
