//! The read-model and outbox contracts against MongoDB, and Lablet serving with its read models
//! there. No MongoDB server can run where Lablet is built; these run when
//! `LABLET_TEST_MONGODB_URL` names one (`docker compose up mongodb` starts a replica set, see
//! `docs/operations.md`) and are reported skipped otherwise. Each check takes a database of
//! its own, dropped at the end.

use lablet_application::ports::ReadModelStore;
use lablet_infrastructure::config::StoreLocation;
use lablet_infrastructure::mongo::{connect, MongoOutboxStore, MongoReadModelStore};
use lablet_tests::contract;
use lablet_tests::url::with_database;
use std::sync::{Arc, Mutex};

const URL_VARIABLE: &str = "LABLET_TEST_MONGODB_URL";

/// The server URL, or `None` (saying so) when the MongoDB suites are skipped.
pub(crate) fn server_url(test: &str) -> Option<String> {
    let url = std::env::var(URL_VARIABLE).ok().filter(|url| !url.is_empty());
    if url.is_none() {
        lablet_tests::report_skipped(
            test,
            &format!(
                "no MongoDB server here; set {URL_VARIABLE} (e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0) to run it"
            ),
        );
    }
    url
}

/// A fresh database on the server, migrated (indexes created).
pub(crate) async fn fresh_database(server: &str) -> String {
    let url = with_database(server, &format!("lablet_test_{}", uuid::Uuid::now_v7().simple()));
    lablet_migrations::mongo::migrate(&url).await.expect("indexes");
    url
}

pub(crate) async fn drop_database(url: &str) {
    if let Ok(database) = connect(url).await {
        let _ = database.drop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_read_model_store_meets_the_contract() {
    let Some(server) = server_url("mongodb_read_model_store_meets_the_contract") else {
        return;
    };
    let urls = Mutex::new(Vec::new());
    contract::read_models::run_all(|| async {
        let url = fresh_database(&server).await;
        let store = MongoReadModelStore::new(connect(&url).await.expect("MongoDB answers"));
        urls.lock().unwrap().push(url);
        Arc::new(store) as Arc<dyn ReadModelStore>
    })
    .await;
    for url in urls.into_inner().unwrap() {
        drop_database(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_rebuilds_meet_the_contract() {
    let Some(server) = server_url("mongodb_rebuilds_meet_the_contract") else {
        return;
    };
    let url = fresh_database(&server).await;
    lablet_migrations::mongo::migrate(&url).await.expect("the indexes");
    let database = connect(&url).await.expect("MongoDB answers");
    let live = Arc::new(MongoReadModelStore::new(database.clone()));
    contract::rebuilds::a_staged_read_model_swaps_in_whole_and_fences_runners_that_started_before(live).await;
    let left = database
        .list_collection_names()
        .await
        .expect("the collections")
        .into_iter()
        .filter(|name| name.starts_with("rebuild_"))
        .collect::<Vec<_>>();
    assert!(left.is_empty(), "discarded staging collections are gone: {left:?}");
    drop_database(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_outbox_store_meets_the_contract() {
    let Some(server) = server_url("mongodb_outbox_store_meets_the_contract") else {
        return;
    };
    let url = fresh_database(&server).await;
    let database = connect(&url).await.expect("MongoDB answers");
    let store = MongoOutboxStore::new(database.clone());
    let leases = lablet_infrastructure::mongo::MongoLeaseStore::new(database);
    contract::outbox::run_all(Arc::new(store), Arc::new(leases)).await;
    drop_database(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lablet_serves_with_its_read_models_on_mongodb() {
    let Some(server) = server_url("lablet_serves_with_its_read_models_on_mongodb") else {
        return;
    };
    let url = with_database(&server, &format!("lablet_test_{}", uuid::Uuid::now_v7().simple()));
    let read_models = url.clone();
    let server = lablet_tests::TestServer::start_with(|settings| {
        settings.read_models = StoreLocation::Mongo(read_models);
    })
    .await;
    let observation = serde_json::json!({"worker_id": uuid::Uuid::now_v7(), "lab_id": "m", "state": "STARTED"});
    let (status, lab, position) = server.post("/api/v1/lab-records/observations", &observation).await;
    assert_eq!(status, 200, "{lab}");
    let (status, read) = server
        .get_at(
            &format!("/api/v1/lab-records/{}", lab["id"].as_str().unwrap()),
            position.unwrap(),
        )
        .await;
    assert_eq!((status, read["state"].as_str()), (200, Some("STARTED")));
    server.stop().await;
    drop_database(&url).await;
}

#[tokio::test]
async fn an_unreachable_mongodb_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    settings.read_models = StoreLocation::Mongo("mongodb://127.0.0.1:1/lablet?serverSelectionTimeoutMS=500".into());
    let refused = lablet_api::app::build(&settings).await.err().expect("no start");
    let message = refused.to_string();
    assert!(message.starts_with("LABLET_READ_MODEL_URL"), "{message}");
    assert!(message.contains("does not answer"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_lease_store_meets_the_contract() {
    let Some(server) = server_url("mongodb_lease_store_meets_the_contract") else {
        return;
    };
    let urls = Mutex::new(Vec::new());
    contract::leases::run_all(|| async {
        let url = fresh_database(&server).await;
        let store = lablet_infrastructure::mongo::MongoLeaseStore::new(connect(&url).await.expect("MongoDB answers"));
        urls.lock().unwrap().push(url);
        Arc::new(store) as Arc<dyn lablet_application::ports::LeaseStore>
    })
    .await;
    for url in urls.into_inner().unwrap() {
        drop_database(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_mongodb_read_model_equal_a_single_replay() {
    let Some(server) = server_url("two_runners_on_one_mongodb_read_model_equal_a_single_replay") else {
        return;
    };
    let log = tempfile::tempdir().unwrap();
    let path = log.path().join("events.db");
    lablet_migrations::sqlite::migrate_file(&path, lablet_migrations::sqlite::EVENT_STORE).unwrap();
    let events: Arc<dyn lablet_application::ports::EventStore> =
        Arc::new(lablet_infrastructure::sqlite::SqliteEventStore::open(&path).unwrap());
    let (shared, replay) = (fresh_database(&server).await, fresh_database(&server).await);
    let open = |url: String| async move {
        Arc::new(MongoReadModelStore::new(connect(&url).await.expect("MongoDB answers"))) as Arc<dyn ReadModelStore>
    };
    contract::fenced_runners::two_runners_on_one_collection_equal_a_single_replay(
        events,
        open(shared.clone()).await,
        open(replay.clone()).await,
    )
    .await;
    drop_database(&shared).await;
    drop_database(&replay).await;
}
