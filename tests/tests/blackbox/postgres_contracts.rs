//! The event store, read-model and outbox contracts against PostgreSQL, and what only a shared
//! database can show:
//! sixteen writers whose transactions randomly roll back never make a checkpointing reader miss
//! or repeat an event, and two processes on one database never both win an expected version.
//! Each test takes a fresh database (see `lablet_tests::postgres`).

use lablet_application::ports::{EventStore, EventStoreError, ExpectedVersion, ReadModelStore};
use lablet_infrastructure::config::StoreLocation;
use lablet_infrastructure::postgres::log_batch::{append_batch, Append, LogStatements, TransactionMode};
use lablet_infrastructure::postgres::{
    PostgresEventStore, PostgresOutboxStore, PostgresReadModelStore, PostgresTarget,
};
use lablet_migrations::postgres::{migrate, EVENT_STORE, EVENT_STORE_TABLE, READ_MODELS, READ_MODELS_TABLE};
use lablet_tests::contract;
use lablet_tests::contract::event_store::event;
use lablet_tests::postgres::TestDatabase;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

async fn migrated_store(target: &PostgresTarget) -> PostgresEventStore {
    migrate(target, EVENT_STORE_TABLE, EVENT_STORE)
        .await
        .expect("migrations");
    PostgresEventStore::open(target).await.expect("the store opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_event_store_meets_the_contract() {
    let Some(probe) = TestDatabase::create("postgres_event_store_meets_the_contract").await else {
        return;
    };
    probe.drop_now().await;
    let databases = Mutex::new(Vec::new());
    contract::event_store::run_all(|| async {
        let database = TestDatabase::create("contract")
            .await
            .expect("PostgreSQL answered before");
        let store = migrated_store(&database.target()).await;
        databases.lock().unwrap().push(database);
        Arc::new(store) as Arc<dyn EventStore>
    })
    .await;
    for database in databases.into_inner().unwrap() {
        database.drop_now().await;
    }
}

async fn migrated_read_models(database: &TestDatabase) -> PostgresTarget {
    let target = database.target();
    migrate(&target, READ_MODELS_TABLE, READ_MODELS)
        .await
        .expect("migrations");
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rebuilds_meet_the_contract() {
    let Some(database) = TestDatabase::create("postgres_rebuilds_meet_the_contract").await else {
        return;
    };
    let target = migrated_read_models(&database).await;
    let live = Arc::new(PostgresReadModelStore::open(&target).await.expect("the store opens"));
    contract::rebuilds::a_staged_read_model_swaps_in_whole_and_fences_runners_that_started_before(live).await;
    let client = target.connect().await.expect("PostgreSQL answers");
    let staging = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&lablet_infrastructure::postgres::STAGING_SCHEMA_PREFIX],
        )
        .await
        .expect("a count");
    assert_eq!(staging.get::<_, i64>(0), 0, "discarded staging schemas are gone");
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_model_store_meets_the_contract() {
    let Some(probe) = TestDatabase::create("postgres_read_model_store_meets_the_contract").await else {
        return;
    };
    probe.drop_now().await;
    let databases = Mutex::new(Vec::new());
    contract::read_models::run_all(|| async {
        let database = TestDatabase::create("contract")
            .await
            .expect("PostgreSQL answered before");
        let store = PostgresReadModelStore::open(&migrated_read_models(&database).await)
            .await
            .expect("the store opens");
        databases.lock().unwrap().push(database);
        Arc::new(store) as Arc<dyn ReadModelStore>
    })
    .await;
    for database in databases.into_inner().unwrap() {
        database.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_store_meets_the_contract() {
    let Some(database) = TestDatabase::create("postgres_outbox_store_meets_the_contract").await else {
        return;
    };
    let target = migrated_read_models(&database).await;
    let store = PostgresOutboxStore::open(&target).await.expect("the store opens");
    let leases = lablet_infrastructure::postgres::PostgresLeaseStore::open(&target)
        .await
        .expect("the store opens");
    contract::outbox::run_all(Arc::new(store), Arc::new(leases)).await;
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_an_unmigrated_database_is_refused_clearly() {
    let Some(database) = TestDatabase::create("migrations_apply_once").await else {
        return;
    };
    let target = database.target();
    let refused = PostgresEventStore::open(&target).await.err().expect("no schema yet");
    assert!(refused.to_string().contains("lablet migrate"), "{refused}");
    assert_eq!(migrate(&target, EVENT_STORE_TABLE, EVENT_STORE).await.unwrap(), vec![1]);
    assert_eq!(
        migrate(&target, EVENT_STORE_TABLE, EVENT_STORE).await.unwrap(),
        Vec::<u32>::new()
    );
    database.drop_now().await;
}

/// A number in `[0, 1)` from a fresh UUID's random bits.
fn coin() -> f64 {
    (Uuid::new_v4().as_u128() as u32) as f64 / (u32::MAX as f64 + 1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_writers_with_random_rollbacks_never_make_a_checkpointing_reader_miss_or_repeat() {
    const WRITERS: usize = 16;
    const ROUNDS: usize = 30;
    let Some(database) = TestDatabase::create("sixteen_writers_with_random_rollbacks").await else {
        return;
    };
    let target = database.target();
    let store = Arc::new(migrated_store(&target).await);
    let committed: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let writers_done = Arc::new(AtomicBool::new(false));

    // The reader checkpoints after every event it takes, reading small pages while writers
    // hold, commit and roll back their transactions.
    let reader = tokio::spawn({
        let (store, writers_done) = (store.clone(), writers_done.clone());
        async move {
            let mut checkpoint = 0;
            let mut seen: Vec<(u64, Uuid)> = Vec::new();
            loop {
                let last_round = writers_done.load(Ordering::SeqCst);
                loop {
                    let page = store.read_all(checkpoint, 5).await.expect("a page");
                    if page.is_empty() {
                        break;
                    }
                    for envelope in page {
                        assert!(envelope.position > checkpoint, "positions only grow");
                        checkpoint = envelope.position;
                        seen.push((envelope.position, envelope.event_id));
                    }
                }
                if last_round {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (target, committed) = (target.clone(), committed.clone());
        writers.push(tokio::spawn(async move {
            let mut client = target.connect().await.expect("a writer connection");
            let statements = LogStatements::prepare(&client).await.expect("prepared");
            let mut rolled_back = 0;
            for round in 0..ROUNDS {
                let appends: Vec<Append> = (0..1 + round % 2)
                    .map(|k| Append {
                        stream: format!("writer{writer}-{}", (round + k) % 3),
                        expected: ExpectedVersion::Any,
                        events: vec![event(round as u64), event(round as u64 + 1)],
                    })
                    .collect();
                let tx = client.transaction().await.expect("a transaction");
                let outcome = append_batch(&tx, &statements, &appends, TransactionMode::Callers, None)
                    .await
                    .expect("the batch is staged");
                assert!(outcome.answers.iter().all(Result::is_ok));
                tokio::time::sleep(Duration::from_micros((coin() * 2000.0) as u64)).await;
                if coin() < 0.3 {
                    tx.rollback().await.expect("rolled back");
                    rolled_back += 1;
                } else {
                    tx.commit().await.expect("committed");
                    let ids = appends.iter().flat_map(|a| a.events.iter().map(|e| e.event_id));
                    committed.lock().unwrap().extend(ids);
                }
            }
            rolled_back
        }));
    }
    let mut rolled_back = 0;
    for writer in writers {
        rolled_back += writer.await.expect("a writer");
    }
    writers_done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("the reader");
    assert!(rolled_back > 0, "some transactions rolled back");

    let committed = committed.lock().unwrap().clone();
    let seen_ids: HashSet<Uuid> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(seen_ids.len(), seen.len(), "no event was read twice");
    assert_eq!(seen_ids, committed, "every committed event was read, and nothing else");
    let positions: Vec<u64> = seen.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        positions,
        (1..=seen.len() as u64).collect::<Vec<_>>(),
        "positions are dense: rolled-back appends gave theirs back"
    );
    let again = store.read_all(0, 100_000).await.unwrap();
    let again: Vec<(u64, Uuid)> = again.iter().map(|e| (e.position, e.event_id)).collect();
    assert_eq!(again, seen, "a second reader sees the same order");
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_never_both_win_a_version_and_hear_each_other() {
    let Some(database) = TestDatabase::create("two_processes_on_one_database").await else {
        return;
    };
    let target = database.target();
    let first = migrated_store(&target).await;
    let second = PostgresEventStore::open(&target).await.unwrap();
    let mut heard = second.watch_head();

    let won = first
        .append("shared-1", ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let lost = second
        .append("shared-1", ExpectedVersion::NoStream, vec![event(2)])
        .await
        .unwrap_err();
    assert_eq!(
        lost,
        EventStoreError::WrongExpectedVersion {
            stream: "shared-1".into(),
            expected: ExpectedVersion::NoStream,
            actual: Some(1)
        }
    );
    tokio::time::timeout(
        Duration::from_secs(5),
        heard.wait_for(|head| *head >= won.last_position),
    )
    .await
    .expect("the other process hears of the append")
    .unwrap();

    // Both race on one stream with fresh expectations; each version is won exactly once.
    let (first, second) = (Arc::new(first), Arc::new(second));
    let mut racers = Vec::new();
    for racer in 0..8 {
        let store: Arc<PostgresEventStore> = if racer % 2 == 0 { first.clone() } else { second.clone() };
        racers.push(tokio::spawn(async move {
            let mut wins = 0;
            while wins < 5 {
                let version = store.read_stream("shared-1", 1, 1000).await.unwrap().len() as u64;
                match store
                    .append("shared-1", ExpectedVersion::Exact(version), vec![event(version)])
                    .await
                {
                    Ok(_) => wins += 1,
                    Err(EventStoreError::WrongExpectedVersion { .. }) => {}
                    Err(other) => panic!("{other}"),
                }
            }
        }));
    }
    for racer in racers {
        racer.await.unwrap();
    }
    let stream = first.read_stream("shared-1", 1, 1000).await.unwrap();
    assert_eq!(
        stream.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=41).collect::<Vec<u64>>()
    );
    drop((first, second));
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lablet_serves_on_postgresql_alone() {
    let Some(database) = TestDatabase::create("lablet_serves_on_postgresql_alone").await else {
        return;
    };
    let url = database.url.clone();
    let server = lablet_tests::TestServer::start_with(|settings| {
        settings.event_store = StoreLocation::Postgres(url.clone());
        settings.read_models = StoreLocation::Postgres(url);
    })
    .await;
    let observation = serde_json::json!({"worker_id": Uuid::now_v7(), "lab_id": "pg", "state": "STARTED"});
    let (status, lab, position) = server.post("/api/v1/lab-records/observations", &observation).await;
    assert_eq!(status, 200, "{lab}");
    let (status, read) = server
        .get_at(
            &format!("/api/v1/lab-records/{}", lab["id"].as_str().unwrap()),
            position.unwrap(),
        )
        .await;
    assert_eq!((status, read["state"].as_str()), (200, Some("STARTED")));
    assert_eq!(read["operation_history"].as_array().map(Vec::len), Some(1));
    let (status, key, _) = server
        .post(
            "/api/v1/api-keys",
            &serde_json::json!({"name": "grader", "roles": ["integrator"]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let keyed = reqwest::Client::new()
        .get(server.url("/api/v1/events/inbox/unknown/none"))
        .header("x-api-key", key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        keyed.status(),
        404,
        "the key is found in PostgreSQL and lets its holder in"
    );

    // A CML worker: its credentials sealed in PostgreSQL, opened by the refresh, its document
    // filtered by status and region.
    let cml = lablet_cml_simulator::RunningSimulator::start(
        "127.0.0.1:0".parse().unwrap(),
        lablet_cml_simulator::SimulatorConfig::default(),
    )
    .await
    .unwrap();
    cml.add_lab(lablet_cml_simulator::LabSeed {
        title: "On PostgreSQL".into(),
        ..Default::default()
    });
    let worker = serde_json::json!({"name": "pg-worker", "region": "pg-region", "endpoint": cml.url(),
                                    "username": "admin", "password": "admin-password"});
    let (status, created, _) = server.post("/api/v1/workers", &worker).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, counts, _) = server
        .post(&format!("/api/v1/workers/{id}/labs/refresh"), &serde_json::json!({}))
        .await;
    assert_eq!((status, counts["created"].as_u64()), (200, Some(1)), "{counts}");
    let position = server.head_position().await;
    let (_, page) = server
        .get_at("/api/v1/workers?status=running&region=pg-region", position)
        .await;
    assert_eq!(page["items"][0]["last_sync"]["created"], 1, "{page}");
    let (_, labs) = server.get_at(&format!("/api/v1/workers/{id}/labs"), position).await;
    assert_eq!(labs["items"][0]["title"], "On PostgreSQL");
    cml.stop().await;
    server.stop().await;
    database.drop_now().await;
}

#[tokio::test]
async fn an_unreachable_postgresql_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    settings.event_store = StoreLocation::Postgres("postgres://nobody@127.0.0.1:1/none?connect_timeout=2".into());
    let refused = lablet_api::app::build(&settings).await.err().expect("no start");
    let message = refused.to_string();
    assert!(message.starts_with("LABLET_EVENT_STORE_URL"), "{message}");
    assert!(message.contains("cannot connect"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_database_refuses_fails_alone_and_leaves_nothing_behind() {
    let Some(database) = TestDatabase::create("an_append_the_database_refuses_fails_alone").await else {
        return;
    };
    let store = Arc::new(migrated_store(&database.target()).await);
    // Text columns refuse NUL characters: this append passes every check of its own but the
    // database refuses it, in whatever batch it lands.
    let mut poison = event(0);
    poison.metadata.actor = "nul\0actor".into();
    let mut appends = Vec::new();
    for n in 0..24u64 {
        let store = store.clone();
        let events = if n == 12 {
            vec![event(n), poison.clone()]
        } else {
            vec![event(n)]
        };
        appends.push(tokio::spawn(async move {
            store
                .append(&format!("batch-{n}"), ExpectedVersion::NoStream, events)
                .await
        }));
    }
    let mut answers = Vec::new();
    for append in appends {
        answers.push(append.await.unwrap());
    }
    for (n, answer) in answers.iter().enumerate() {
        if n == 12 {
            assert!(matches!(answer, Err(EventStoreError::Unavailable(_))), "{answer:?}");
        } else {
            assert!(answer.is_ok(), "append {n}: {answer:?}");
        }
    }
    assert!(
        store.read_stream("batch-12", 1, 10).await.unwrap().is_empty(),
        "nothing of it is stored"
    );
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), 23);
    assert_eq!(
        store.head_position().await.unwrap(),
        23,
        "the head counts only what is stored"
    );
    drop(store);
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_postgres_read_model_equal_a_single_replay() {
    let Some(shared) = TestDatabase::create("two_runners_shared").await else {
        return;
    };
    let replay = TestDatabase::create("two_runners_replay")
        .await
        .expect("PostgreSQL answered");
    let events: Arc<dyn EventStore> = Arc::new(migrated_store(&shared.target()).await);
    let open = |target: PostgresTarget| async move {
        Arc::new(PostgresReadModelStore::open(&target).await.expect("the store opens")) as Arc<dyn ReadModelStore>
    };
    let shared_store = open(migrated_read_models(&shared).await).await;
    let replay_store = open(migrated_read_models(&replay).await).await;
    contract::fenced_runners::two_runners_on_one_collection_equal_a_single_replay(events, shared_store, replay_store)
        .await;
    shared.drop_now().await;
    replay.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lease_store_meets_the_contract() {
    let Some(probe) = TestDatabase::create("postgres_lease_store_meets_the_contract").await else {
        return;
    };
    probe.drop_now().await;
    let databases = Mutex::new(Vec::new());
    contract::leases::run_all(|| async {
        let database = TestDatabase::create("leases")
            .await
            .expect("PostgreSQL answered before");
        let store = lablet_infrastructure::postgres::PostgresLeaseStore::open(&migrated_read_models(&database).await)
            .await
            .expect("the store opens");
        databases.lock().unwrap().push(database);
        Arc::new(store) as Arc<dyn lablet_application::ports::LeaseStore>
    })
    .await;
    for database in databases.into_inner().unwrap() {
        database.drop_now().await;
    }
}
