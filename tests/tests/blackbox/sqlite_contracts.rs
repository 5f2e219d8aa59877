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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rebuilds_meet_the_contract() {
    let dirs = Dirs::default();
    let path = dirs.file("read_models.db");
    migrate_file(&path, READ_MODELS).unwrap();
    let live = Arc::new(SqliteReadModelStore::open(&path).unwrap());
    contract::rebuilds::a_staged_read_model_swaps_in_whole_and_fences_runners_that_started_before(live).await;
    let directory = path.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(lablet_infrastructure::sqlite::SCRATCH_PREFIX))
        .collect();
    assert!(left.is_empty(), "discarded scratch files are gone: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reads_the_same_across_its_indexed_part_and_the_unindexed_tail() {
    use lablet_application::ports::ExpectedVersion;
    let dirs = Dirs::default();
    let path = dirs.file("events.db");
    migrate_file(&path, EVENT_STORE).unwrap();
    let store = SqliteEventStore::open(&path).unwrap();
    let versions =
        |events: Vec<lablet_application::EventEnvelope>| events.iter().map(|e| e.version).collect::<Vec<_>>();
    for n in 0..10 {
        store
            .append("s-1", ExpectedVersion::Any, vec![contract::event_store::event(n)])
            .await
            .unwrap();
    }
    // Idle: the writer indexes what it has.
    let indexed = || {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT position FROM stream_index_progress", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    for _ in 0..500 {
        if indexed() == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(indexed(), 10);
    for n in 10..15 {
        store
            .append("s-1", ExpectedVersion::Exact(n), vec![contract::event_store::event(n)])
            .await
            .unwrap();
        store
            .append("other-1", ExpectedVersion::Any, vec![contract::event_store::event(n)])
            .await
            .unwrap();
    }
    assert_eq!(
        versions(store.read_stream("s-1", 1, 100).await.unwrap()),
        (1..=15).collect::<Vec<_>>()
    );
    assert_eq!(
        versions(store.read_stream("s-1", 8, 5).await.unwrap()),
        vec![8, 9, 10, 11, 12]
    );
    assert_eq!(
        versions(store.read_stream("s-1", 12, 100).await.unwrap()),
        vec![12, 13, 14, 15]
    );
    assert_eq!(versions(store.read_stream("s-1", 3, 2).await.unwrap()), vec![3, 4]);
    assert!(store.read_stream("s-1", 16, 10).await.unwrap().is_empty());
    assert_eq!(
        versions(store.read_stream("other-1", 1, 100).await.unwrap()),
        vec![1, 2, 3, 4, 5]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_its_index_is_read_correctly_and_indexed_when_the_writer_starts() {
    use lablet_application::ports::ExpectedVersion;
    let dirs = Dirs::default();
    let path = dirs.file("events.db");
    migrate_file(&path, EVENT_STORE).unwrap();
    let store = SqliteEventStore::open(&path).unwrap();
    for n in 0..30u64 {
        let stream = format!("s-{}", n % 3);
        store
            .append(&stream, ExpectedVersion::Any, vec![contract::event_store::event(n)])
            .await
            .unwrap();
    }
    store.close();
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // As after the migration from a log that had no stream index.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DELETE FROM stream_index; UPDATE stream_index_progress SET position = 0")
        .unwrap();

    let store = SqliteEventStore::open(&path).unwrap();
    let versions: Vec<u64> = store
        .read_stream("s-1", 1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    let refused = store
        .append("s-1", ExpectedVersion::Exact(9), vec![contract::event_store::event(99)])
        .await;
    assert!(refused.is_err(), "the writer knows the heads of the unindexed log");
    store
        .append(
            "s-1",
            ExpectedVersion::Exact(10),
            vec![contract::event_store::event(99)],
        )
        .await
        .unwrap();
    let progress = || -> (i64, i64) {
        conn.query_row(
            "SELECT (SELECT position FROM stream_index_progress), (SELECT count(*) FROM stream_index)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    for _ in 0..500 {
        if progress() == (31, 31) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(progress(), (31, 31), "indexed when the writer was idle");
}

#[tokio::test]
async fn sqlite_outbox_store_meets_the_contract() {
    let dirs = Dirs::default();
    let path = dirs.file("read_models.db");
    migrate_file(&path, READ_MODELS).unwrap();
    let store = lablet_infrastructure::sqlite::SqliteOutboxStore::open(&path).unwrap();
    let leases = lablet_infrastructure::sqlite::SqliteLeaseStore::open(&path).unwrap();
    contract::outbox::run_all(Arc::new(store), Arc::new(leases)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_sqlite_read_model_equal_a_single_replay() {
    let dirs = Dirs::default();
    let open_events = || {
        let path = dirs.file("events.db");
        migrate_file(&path, EVENT_STORE).unwrap();
        Arc::new(SqliteEventStore::open(&path).unwrap()) as Arc<dyn EventStore>
    };
    let open_read_models = |name: &str| {
        let path = dirs.file(name);
        migrate_file(&path, READ_MODELS).unwrap();
        Arc::new(SqliteReadModelStore::open(&path).unwrap()) as Arc<dyn ReadModelStore>
    };
    contract::fenced_runners::two_runners_on_one_collection_equal_a_single_replay(
        open_events(),
        open_read_models("shared.db"),
        open_read_models("replay.db"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lease_store_meets_the_contract() {
    let dirs = Dirs::default();
    contract::leases::run_all(|| async {
        let path = dirs.file("read_models.db");
        migrate_file(&path, READ_MODELS).unwrap();
        Arc::new(lablet_infrastructure::sqlite::SqliteLeaseStore::open(&path).unwrap())
            as Arc<dyn lablet_application::ports::LeaseStore>
    })
    .await;
}
