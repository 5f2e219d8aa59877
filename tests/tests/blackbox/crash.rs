//! Kill the server process (SIGKILL) in the middle of concurrent writes, restart it, and show
//! that every acknowledged command is in the log and that the read models equal a replay of
//! the log from scratch.

use lablet_application::ports::{EventStore, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_infrastructure::sqlite::{SqliteEventStore, SqliteReadModelStore};
use lablet_migrations::sqlite::{migrate_file, READ_MODELS};
use lablet_projections::{standard_projectors, ProjectionRunner};
use lablet_tests::process::free_port;
use lablet_tests::server::{activate_definition, get_json, instance_request, wait_ready};
use lablet_tests::server::{ActiveDefinition, TEST_SYNC_INTERVAL_MS};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

const WRITERS: usize = 16;

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");

fn start_server(data_dir: &Path, port: u16) -> Child {
    let sync = TEST_SYNC_INTERVAL_MS.to_string();
    lablet_tests::process::start_server(LABLET, data_dir, port, &[("LABLET_DEFINITION_SYNC_INTERVAL_MS", &sync)])
}

/// The `i`-th command of `writer`: mostly lab observations, some instances and work orders.
/// Answers (path, body, stream kind).
pub(crate) fn command(writer: usize, i: usize, definition: &ActiveDefinition) -> (&'static str, Value, &'static str) {
    match i % 10 {
        3 => (
            "/api/v1/instances",
            instance_request(definition, &format!("res-{writer}-{i}"), &format!("student-{writer}")),
            "lablet_instance",
        ),
        7 => (
            "/api/v1/work-orders",
            json!({"kind": "report.render", "payload": {"n": i}}),
            "work_order",
        ),
        _ => (
            "/api/v1/lab-records/observations",
            json!({
                "worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
                "lab_id": format!("lab-{writer}-{}", i % 20),
                "state": if (i / 20).is_multiple_of(2) { "STARTED" } else { "STOPPED" },
                "title": format!("lab {writer}"),
            }),
            "lab_record",
        ),
    }
}

/// Sends commands until the server stops answering; returns the acknowledged
/// (stream, version, position) of each that changed something.
async fn write_until_gone(
    client: reqwest::Client,
    base: String,
    writer: usize,
    definition: ActiveDefinition,
) -> Vec<(String, u64, u64)> {
    let mut acknowledged = Vec::new();
    for i in 0.. {
        let (path, body, kind) = command(writer, i, &definition);
        let Ok(response) = client.post(format!("{base}{path}")).json(&body).send().await else {
            break;
        };
        if !response.status().is_success() {
            continue;
        }
        let Ok(outcome) = response.json::<Value>().await else {
            break;
        };
        if outcome["changed"] != false {
            acknowledged.push((
                format!("{kind}-{}", outcome["id"].as_str().unwrap()),
                outcome["version"].as_u64().unwrap(),
                outcome["position"].as_u64().unwrap(),
            ));
        }
    }
    acknowledged
}

/// Every acknowledged `(stream, version, position)` is in the log, at the position and version
/// its command was told.
pub(crate) fn assert_every_acknowledged_command_is_logged(log: &Connection, acknowledged: &[(String, u64, u64)]) {
    for (expected_stream, version, position) in acknowledged {
        let (stream, stored_version): (String, i64) = log
            .query_row(
                "SELECT stream, version FROM events WHERE position = ?1",
                [*position as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or_else(|_| panic!("acknowledged position {position} is missing"));
        assert_eq!((&stream, stored_version as u64), (expected_stream, *version));
    }
}

fn dump(conn: &Connection, sql: &str) -> Vec<(String, String, i64)> {
    let mut statement = conn.prepare(sql).unwrap();
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commands_survive_a_kill_and_read_models_equal_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let token = lablet_tests::server::token(
        &lablet_infrastructure::Settings::defaults_in(dir.path()),
        "test-admin",
        &[lablet_api::auth::Role::Admin],
    );
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .default_headers(headers)
        .build()
        .unwrap();

    let port = free_port();
    let mut server = start_server(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &format!("{base}/health/ready")).await;
    let definition = activate_definition(&client, &base, dir.path(), "ospf").await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write_until_gone(client.clone(), base.clone(), w, definition.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 100,
        "the server was busy when killed ({} acknowledged)",
        acknowledged.len()
    );

    // Every acknowledged command is in the log, at the position and version it was told.
    let log = Connection::open(dir.path().join("lablet.db")).unwrap();
    assert_every_acknowledged_command_is_logged(&log, &acknowledged);
    let (count, max): (i64, i64) = log
        .query_row("SELECT count(*), max(position) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(count, max, "positions have no gaps after recovery");
    drop(log);

    // Restart on the same data and let the projections catch up.
    let port = free_port();
    let mut server = start_server(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &format!("{base}/health/ready")).await;
    let ready = get_json(&client, &format!("{base}/health/ready")).await;
    assert_eq!(ready["head_position"].as_i64(), Some(max));
    for projection in ["lab_records", "lablet_instances", "work_orders"] {
        assert_eq!(
            ready["projections"][projection].as_i64(),
            Some(max),
            "{projection} caught up"
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();

    // Replay the whole log into fresh read models and compare with what the server built.
    let events = Arc::new(SqliteEventStore::open(&dir.path().join("lablet.db")).unwrap()) as Arc<dyn EventStore>;
    let mut previous: std::collections::HashMap<String, String> = Default::default();
    for envelope in events.read_all(0, 1_000_000).await.unwrap() {
        let expected = envelope.expected_hash(previous.get(&envelope.stream).map(String::as_str));
        assert_eq!(
            envelope.hash, expected,
            "hash chain of {} v{}",
            envelope.stream, envelope.version
        );
        previous.insert(envelope.stream.clone(), envelope.hash.clone());
    }
    let replay_path = dir.path().join("replay.db");
    migrate_file(&replay_path, READ_MODELS).unwrap();
    let replay = Arc::new(SqliteReadModelStore::open(&replay_path).unwrap());
    for projector in standard_projectors() {
        let runner = ProjectionRunner::new(events.clone(), replay.clone(), projector, ProjectionProgress::default())
            .with_batch_size(333);
        runner.catch_up().await.unwrap();
    }
    // Every document, with its operation history, is the same in both (compared as documents:
    // how history is split into stored segments depends on when commits happened).
    let live_store = SqliteReadModelStore::open(&dir.path().join("read_models.db")).unwrap();
    let live = Connection::open(dir.path().join("read_models.db")).unwrap();
    let rebuilt = Connection::open(&replay_path).unwrap();
    let mut compared = 0;
    for collection in ["lab_records", "lablet_instances", "work_orders"] {
        let sql = format!("SELECT id, id, last_position FROM {collection} ORDER BY id");
        let (ids, rebuilt_ids) = (dump(&live, &sql), dump(&rebuilt, &sql));
        assert!(!ids.is_empty(), "{collection} has documents");
        assert_eq!(ids, rebuilt_ids, "{collection}: same documents at the same positions");
        for (id, _, _) in ids {
            let a = live_store.get(collection, &id).await.unwrap().unwrap();
            let b = replay.get(collection, &id).await.unwrap().unwrap();
            let (a, b): (Value, Value) = (
                serde_json::from_str(a.get()).unwrap(),
                serde_json::from_str(b.get()).unwrap(),
            );
            assert_eq!(a, b, "{collection} {id} differs from a replay");
            compared += 1;
        }
    }
    let checkpoints = "SELECT name, name, position FROM projection_checkpoints
                       WHERE name IN ('lab_records', 'lablet_instances', 'work_orders') ORDER BY name";
    assert_eq!(dump(&live, checkpoints), dump(&rebuilt, checkpoints));
    assert!(compared > 0);
}
