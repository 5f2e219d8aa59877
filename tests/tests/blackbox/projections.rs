//! The projection runner applies every event exactly once and never skips one.

use chrono::Utc;
use lablet_application::envelope::{truncate_to_micros, EventMetadata, NewEvent};
use lablet_application::ports::{EventStore, ExpectedVersion, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_domain::encode_event;
use lablet_domain::lab_record::{LabDetails, LabRecordEvent, LabState};
use lablet_domain::DomainEvent;
use lablet_infrastructure::sqlite::{SqliteEventStore, SqliteReadModelStore};
use lablet_migrations::sqlite::{migrate_file, EVENT_STORE, READ_MODELS};
use lablet_projections::projectors::LabRecordsProjector;
use lablet_projections::ProjectionRunner;
use lablet_tests::process::run_cli;
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");

/// Changes one live lab-record document and deletes another, behind Lablet's back.
fn tamper_with_lab_records(data_dir: &std::path::Path, changed: &str, deleted: &str) {
    let read_models = rusqlite::Connection::open(data_dir.join("read_models.db")).unwrap();
    read_models
        .execute(
            "UPDATE lab_records SET body = json_set(body, '$.title', 'tampered') WHERE id = ?1",
            [changed],
        )
        .unwrap();
    read_models
        .execute("DELETE FROM lab_records WHERE id = ?1", [deleted])
        .unwrap();
}

struct Stores {
    events: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModelStore>,
    _dir: tempfile::TempDir,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let (log, models) = (dir.path().join("events.db"), dir.path().join("read_models.db"));
    migrate_file(&log, EVENT_STORE).unwrap();
    migrate_file(&models, READ_MODELS).unwrap();
    Stores {
        events: Arc::new(SqliteEventStore::open(&log).unwrap()),
        read_models: Arc::new(SqliteReadModelStore::open(&models).unwrap()),
        _dir: dir,
    }
}

fn new_event(event_type: &str, payload: String) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        occurred_at: truncate_to_micros(Utc::now()),
        payload: RawValue::from_string(payload).unwrap(),
        metadata: EventMetadata {
            actor: "tester".into(),
            ..EventMetadata::default()
        },
    }
}

fn lab_event(event: &LabRecordEvent) -> NewEvent {
    new_event(event.event_type(), encode_event(event).unwrap())
}

fn lab_history(now: chrono::DateTime<Utc>) -> Vec<NewEvent> {
    let mut events = vec![lab_event(&LabRecordEvent::Discovered {
        worker_id: Uuid::from_u128(1),
        lab_id: "lab".into(),
        details: LabDetails {
            title: "t".into(),
            ..LabDetails::default()
        },
        state: LabState::Stopped,
        cml_created_at: None,
        cml_modified_at: None,
        discovered_at: now,
    })];
    for (previous, new) in [
        (LabState::Stopped, LabState::Started),
        (LabState::Started, LabState::Booted),
    ] {
        events.push(lab_event(&LabRecordEvent::StateChanged {
            previous,
            new,
            changed_at: now,
        }));
    }
    events
}

fn runner(stores: &Stores) -> ProjectionRunner {
    ProjectionRunner::new(
        stores.events.clone(),
        stores.read_models.clone(),
        Arc::new(LabRecordsProjector),
        ProjectionProgress::default(),
    )
}

async fn document(stores: &Stores, id: &str) -> Value {
    let raw = stores
        .read_models
        .get("lab_records", id)
        .await
        .unwrap()
        .expect("document exists");
    serde_json::from_str(raw.get()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_applied_twice_changes_nothing_the_second_time() {
    let stores = stores();
    let id = Uuid::now_v7();
    let stream = format!("lab_record-{id}");
    stores
        .events
        .append(&stream, ExpectedVersion::NoStream, lab_history(Utc::now()))
        .await
        .unwrap();
    let batch = stores.events.read_all(0, 100).await.unwrap();
    let runner = runner(&stores);

    runner.apply(&batch).await.unwrap();
    let once = document(&stores, &id.to_string()).await;
    runner.apply(&batch).await.unwrap();
    assert_eq!(
        runner.catch_up().await.unwrap(),
        0,
        "the checkpoint is at the head: nothing to read"
    );
    let twice = document(&stores, &id.to_string()).await;

    assert_eq!(once, twice);
    assert_eq!(twice["state"], "BOOTED");
    assert_eq!(twice["version"], 3);
    assert_eq!(twice["operation_history"].as_array().unwrap().len(), 3);
    assert_eq!(stores.read_models.checkpoint("lab_records").await.unwrap(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_stops_the_projection_before_it_and_is_never_skipped() {
    let stores = stores();
    let good = Uuid::now_v7();
    stores
        .events
        .append(
            &format!("lab_record-{good}"),
            ExpectedVersion::NoStream,
            lab_history(Utc::now()),
        )
        .await
        .unwrap();
    let poison = new_event("lab_record.state_changed", r#"{"previous":"NOT_A_STATE"}"#.into());
    let poisoned = stores
        .events
        .append(&format!("lab_record-{good}"), ExpectedVersion::Exact(3), vec![poison])
        .await
        .unwrap();

    let err = runner(&stores).catch_up().await.unwrap_err();
    assert!(err.to_string().contains("cannot be decoded"), "{err}");
    let checkpoint = stores.read_models.checkpoint("lab_records").await.unwrap().unwrap_or(0);
    assert!(
        checkpoint < poisoned.last_position,
        "the checkpoint never passes the poison event"
    );
    // Starting again meets the same event again: it is not skipped.
    assert!(runner(&stores).catch_up().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_in_small_batches_gives_the_same_documents_as_one_batch() {
    let small = stores();
    let large = stores();
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let now = Utc::now();
    for id in &ids {
        for store in [&small, &large] {
            let stream = format!("lab_record-{id}");
            store
                .events
                .append(&stream, ExpectedVersion::NoStream, lab_history(now))
                .await
                .unwrap();
        }
    }
    // Event ids and times differ between the two logs; compare what projections derive.
    let shape = |mut doc: Value| {
        let history = doc["operation_history"].take();
        let states: Vec<Value> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["new_state"].clone())
            .collect();
        (doc["state"].clone(), doc["version"].clone(), states)
    };
    runner(&small).with_batch_size(1).catch_up().await.unwrap();
    runner(&large).catch_up().await.unwrap();
    for id in &ids {
        let (a, b) = (
            document(&small, &id.to_string()).await,
            document(&large, &id.to_string()).await,
        );
        assert_eq!(shape(a), shape(b));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_parked_visibly_and_other_projections_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    settings.query_max_wait = std::time::Duration::from_millis(500);
    let server = lablet_tests::TestServer::start_in(settings).await;
    // Another writer puts an event no projector can read into a lab's stream.
    let poisoned_at = server.stall_lab_records().await;

    // Work orders do not care about lab records: their projection goes on past the poison.
    let (_, _, position) = server
        .post("/api/v1/work-orders", &serde_json::json!({"kind": "report.render"}))
        .await;
    let (status, _) = server.get_at("/api/v1/work-orders", position.unwrap()).await;
    assert_eq!(status, 200);

    let read_models = SqliteReadModelStore::open(&dir.path().join("read_models.db")).unwrap();
    let mut fault = None;
    for _ in 0..100 {
        fault = read_models.status("lab_records").await.unwrap().and_then(|s| s.error);
        if fault.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let fault = fault.expect("the error is recorded");
    assert_eq!(fault.position, Some(poisoned_at));
    assert!(fault.message.contains("cannot be decoded"), "{}", fault.message);
    let (status, problem) = server.get_at("/api/v1/lab-records", poisoned_at).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (503, Some("/problems/projection-lagging")),
        "not skipped"
    );

    let table = run_cli(LABLET, dir.path(), &["projections", "status"]).stdout;
    assert!(table.contains(&format!("STUCK at position {}", poisoned_at)), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("work_orders") && l.ends_with("caught up")),
        "{table}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_verify_reports_every_document_that_differs_from_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let server = lablet_tests::TestServer::start_in(lablet_infrastructure::Settings::defaults_in(dir.path())).await;
    let mut ids = Vec::new();
    for (lab, state) in [("a", "STOPPED"), ("a", "STARTED"), ("b", "STOPPED"), ("c", "BOOTED")] {
        let body =
            serde_json::json!({"worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "lab_id": lab, "state": state});
        let (_, outcome, position) = server.post("/api/v1/lab-records/observations", &body).await;
        ids.push(outcome["id"].as_str().unwrap().to_owned());
        server.get_at("/api/v1/lab-records", position.unwrap()).await;
    }
    server
        .post("/api/v1/work-orders", &serde_json::json!({"kind": "mail.send"}))
        .await;
    let head = server.head_position().await;
    server.get_at("/api/v1/work-orders", head).await;
    server.stop().await;

    let rebuild = || {
        let output = run_cli(LABLET, dir.path(), &["projections", "rebuild", "--all", "--verify"]);
        (output.code, output.stdout, output.stderr)
    };
    let (code, out, err) = rebuild();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("lab_records: replayed 5 events") && err.contains("compared 3 documents, 0 differ"),
        "{err}"
    );

    tamper_with_lab_records(dir.path(), &ids[0], &ids[3]);
    let (code, out, _) = rebuild();
    assert_eq!(code, Some(1));
    let mut reported: Vec<&str> = out.lines().collect();
    reported.sort();
    let mut expected = vec![
        format!("lab_records {} differs from a rebuild", ids[0]),
        format!("lab_records {} differs from a rebuild", ids[3]),
    ];
    expected.sort();
    assert_eq!(reported, expected);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("rebuild-")),
        "scratch files removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_swaps_a_fresh_read_model_in_while_the_server_serves_and_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = lablet_tests::TestServer::start_in(lablet_infrastructure::Settings::defaults_in(dir.path())).await;
    let observe = |lab: String, state: &'static str| serde_json::json!({"worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "lab_id": lab, "state": state});
    let mut ids = Vec::new();
    for lab in ["a", "b", "c"] {
        let (_, outcome, position) = server
            .post("/api/v1/lab-records/observations", &observe(lab.into(), "STARTED"))
            .await;
        ids.push(outcome["id"].as_str().unwrap().to_owned());
        server.get_at("/api/v1/lab-records", position.unwrap()).await;
    }
    tamper_with_lab_records(dir.path(), &ids[0], &ids[2]);

    let cli = |args: &'static [&'static str]| {
        let data_dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let output = run_cli(LABLET, &data_dir, args);
            (output.code, output.stdout, output.stderr)
        })
    };
    // Writes keep coming while the rebuild runs and swaps.
    let writer = {
        let (client, base) = (server.client.clone(), server.url(""));
        tokio::spawn(async move {
            for i in 0..150 {
                let state = if i % 2 == 0 { "STOPPED" } else { "STARTED" };
                let body = serde_json::json!({"worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
                                              "lab_id": format!("busy-{}", i % 10), "state": state});
                let response = client
                    .post(format!("{base}/api/v1/lab-records/observations"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            }
        })
    };
    let (code, out, err) = cli(&["projections", "rebuild", "lab_records"]).await.unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("lab_records: replayed") && err.contains("swapped in"),
        "{err}"
    );
    writer.await.unwrap();

    let (_, outcome, position) = server
        .post("/api/v1/lab-records/observations", &observe("a".into(), "STOPPED"))
        .await;
    assert_eq!(outcome["id"], ids[0].as_str());
    let (status, a) = server
        .get_at(&format!("/api/v1/lab-records/{}", ids[0]), position.unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(a["state"], "STOPPED", "the live projection goes on after the swap");
    assert_ne!(a["title"], "tampered", "the swap replaced the tampered document");
    let (status, _) = server.get(&format!("/api/v1/lab-records/{}", ids[2])).await;
    assert_eq!(status, 200, "the deleted document is back");

    let (code, out, err) = cli(&["projections", "rebuild", "--all", "--verify"]).await.unwrap();
    assert_eq!(code, Some(0), "the swapped-in read model equals a replay: {out}{err}");
    let (_, listed, _) = cli(&["projections", "status"]).await.unwrap();
    let status = listed
        .lines()
        .find(|line| line.starts_with("lab_records"))
        .unwrap_or_default();
    assert!(status.ends_with("caught up"), "{listed}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("rebuild-")),
        "the scratch file is gone"
    );
    server.stop().await;
}
