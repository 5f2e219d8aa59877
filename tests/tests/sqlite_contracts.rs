//! The event store and read-model contract suites against the embedded SQLite adapters.

use lablet_application::ports::{EventStore, ReadModelStore};
use lablet_infrastructure::sqlite::{SqliteEventStore, SqliteReadModelStore};
use lablet_migrations::sqlite::{migrate_file, EVENT_STORE, READ_MODELS};
use lablet_tests::contract;
use std::sync::{Arc, Mutex};
use tempfile::TempDir;

/// Temporary directories that must outlive the stores opened in them.
#[derive(Default)]
struct Dirs(Mutex<Vec<TempDir>>);

impl Dirs {
    fn file(&self, name: &str) -> std::path::PathBuf {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        self.0.lock().unwrap().push(dir);
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_event_store_meets_the_contract() {
    let dirs = Dirs::default();
    contract::event_store::run_all(|| async {
        let path = dirs.file("events.db");
        migrate_file(&path, EVENT_STORE).unwrap();
        Arc::new(SqliteEventStore::open(&path).unwrap()) as Arc<dyn EventStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_model_store_meets_the_contract() {
    let dirs = Dirs::default();
    contract::read_models::run_all(|| async {
        let path = dirs.file("read_models.db");
        migrate_file(&path, READ_MODELS).unwrap();
        Arc::new(SqliteReadModelStore::open(&path).unwrap()) as Arc<dyn ReadModelStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_durable_across_reopening() {
    let dirs = Dirs::default();
    let path = dirs.file("events.db");
    migrate_file(&path, EVENT_STORE).unwrap();
    let store = SqliteEventStore::open(&path).unwrap();
    let outcome = store
        .append(
            "test-durable",
            lablet_application::ports::ExpectedVersion::NoStream,
            vec![contract::event_store::event(1)],
        )
        .await
        .unwrap();
    store.close();
    drop(store);
    let reopened = SqliteEventStore::open(&path).unwrap();
    assert_eq!(reopened.head_position().await.unwrap(), outcome.last_position);
    assert_eq!(reopened.read_stream("test-durable", 1, 10).await.unwrap().len(), 1);
}

#[test]
fn opening_an_unmigrated_file_fails_with_a_clear_message() {
    let dirs = Dirs::default();
    let path = dirs.file("empty.db");
    let err = SqliteEventStore::open(&path).err().expect("refused");
    assert!(err.to_string().contains("no Lablet schema"), "{err}");
}
