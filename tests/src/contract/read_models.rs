//! The read-model store contract: documents with their history, checkpoints committed with
//! them, filters, ordering and paging.

use chrono::Utc;
use lablet_application::ports::read_models::{Filter, OPERATION_HISTORY_LIMIT};
use lablet_application::ports::{
    CommitFence, DocumentWrite, HistoryEntry, HistoryRecord, ListQuery, ReadModelError, ReadModelStore,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use uuid::Uuid;

fn parse(raw: &serde_json::value::RawValue) -> Value {
    serde_json::from_str(raw.get()).expect("stored documents are JSON")
}

fn items(page: &lablet_application::ports::ListPage) -> Vec<Value> {
    page.items.iter().map(|raw| parse(raw)).collect()
}

fn body(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn entry(position: u64, state: &str) -> HistoryRecord {
    HistoryRecord::new(&HistoryEntry {
        position,
        event_id: Uuid::now_v7(),
        event_type: "lab_record.state_changed".into(),
        occurred_at: Utc::now(),
        actor: "tester".into(),
        previous_state: None,
        new_state: Some(json!(state)),
        changed_fields: Default::default(),
    })
    .expect("serialisable")
}

/// A lab-record document write with one operation.
pub fn lab(id: &str, worker: &str, state: &str, position: u64) -> DocumentWrite {
    DocumentWrite {
        collection: "lab_records",
        id: id.into(),
        body: body(json!({"id": id, "worker_id": worker, "state": state, "removed_at": null})),
        last_position: position,
        new_history: vec![entry(position, state)],
    }
}

pub async fn documents_history_and_checkpoint(store: Arc<dyn ReadModelStore>) {
    assert_eq!(store.checkpoint("lab_records").await.unwrap(), None);
    store
        .commit(
            "lab_records",
            CommitFence::new(0, 0),
            3,
            vec![lab("a", "w1", "STOPPED", 1), lab("b", "w1", "STARTED", 2)],
        )
        .await
        .unwrap();
    assert_eq!(store.checkpoint("lab_records").await.unwrap(), Some(3));
    let loaded = store
        .load_documents("lab_records", &["a".into(), "zz".into()])
        .await
        .unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded["a"].last_position, 1);
    assert_eq!(loaded["a"].body["state"], "STOPPED");

    let doc = parse(&store.get("lab_records", "a").await.unwrap().unwrap());
    assert_eq!(doc["operation_history"].as_array().unwrap().len(), 1);
    assert_eq!(doc["worker_id"], "w1");
    assert!(store.get("lab_records", "nope").await.unwrap().is_none());

    // 60 more operations on one document: only the newest 50 remain, oldest first.
    let mut write = lab("a", "w1", "STARTED", 4);
    write.new_history = (4..64).map(|p| entry(p, "STARTED")).collect();
    write.last_position = 63;
    store
        .commit("lab_records", CommitFence::new(0, 3), 63, vec![write])
        .await
        .unwrap();
    let doc = parse(&store.get("lab_records", "a").await.unwrap().unwrap());
    let positions: Vec<u64> = doc["operation_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions.len(), OPERATION_HISTORY_LIMIT);
    assert_eq!(positions, (14..64).collect::<Vec<_>>());
    assert_eq!(store.checkpoint("lab_records").await.unwrap(), Some(63));

    // Many small commits (stores that trim old operations in steps must still show exactly the
    // newest 50).
    for first in (64..104).step_by(4) {
        let mut write = lab("a", "w1", "STARTED", first + 3);
        write.new_history = (first..first + 4).map(|p| entry(p, "STARTED")).collect();
        store
            .commit("lab_records", CommitFence::new(0, first - 1), first + 3, vec![write])
            .await
            .unwrap();
    }
    let doc = parse(&store.get("lab_records", "a").await.unwrap().unwrap());
    let positions: Vec<u64> = doc["operation_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (54..104).collect::<Vec<_>>());
    assert_eq!(
        store.checkpoint("work_orders").await.unwrap(),
        None,
        "checkpoints are per projection"
    );
}

pub async fn filters_sorting_and_paging(store: Arc<dyn ReadModelStore>) {
    let mut writes = Vec::new();
    for i in 0..25 {
        let state = if i % 2 == 0 { "STARTED" } else { "STOPPED" };
        let worker = if i < 20 { "w1" } else { "w2" };
        writes.push(lab(&format!("lab{i:02}"), worker, state, i + 1));
    }
    let mut removed = lab("lab99", "w1", "STOPPED", 30);
    removed.body.insert("removed_at".into(), json!("2026-01-01T00:00:00Z"));
    writes.push(removed);
    store
        .commit("lab_records", CommitFence::new(0, 0), 30, writes)
        .await
        .unwrap();

    let query = |filters: Vec<Filter>, limit: usize, after: Option<String>| ListQuery {
        filters,
        limit,
        after_id: after,
        include_history: false,
    };
    let w1 = || Filter::Equals {
        field: "worker_id",
        value: "w1".into(),
    };
    let present = || Filter::IsNull { field: "removed_at" };

    let page = store
        .list("lab_records", &query(vec![w1(), present()], 8, None))
        .await
        .unwrap();
    let first = items(&page);
    let ids: Vec<&str> = first.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, (0..8).map(|i| format!("lab{i:02}")).collect::<Vec<_>>());
    assert_eq!(page.next_cursor.as_deref(), Some("lab07"));
    assert!(first[0].get("operation_history").is_none(), "lists answer summaries");

    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list("lab_records", &query(vec![w1(), present()], 8, cursor))
            .await
            .unwrap();
        all.extend(items(&page).iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(all.len(), 20, "paging visits every present w1 lab once");

    let started = Filter::Equals {
        field: "state",
        value: "STARTED".into(),
    };
    let page = store
        .list("lab_records", &query(vec![w1(), started, present()], 100, None))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 10);
    assert!(page.next_cursor.is_none());

    let with_removed = store.list("lab_records", &query(vec![w1()], 100, None)).await.unwrap();
    assert_eq!(with_removed.items.len(), 21);
    let with_history = ListQuery {
        include_history: true,
        ..query(vec![w1()], 1, None)
    };
    let page = store.list("lab_records", &with_history).await.unwrap();
    assert_eq!(items(&page)[0]["operation_history"].as_array().unwrap().len(), 1);
}

pub async fn projection_errors_are_kept_until_the_next_commit(store: Arc<dyn ReadModelStore>) {
    assert_eq!(store.status("lab_records").await.unwrap(), None);
    store
        .record_error("lab_records", Some(7), "event 7 cannot be decoded")
        .await
        .unwrap();
    let status = store.status("lab_records").await.unwrap().expect("a status");
    let fault = status.error.expect("the error");
    assert_eq!(
        (status.position, fault.position, fault.message.as_str()),
        (0, Some(7), "event 7 cannot be decoded")
    );
    assert_eq!(
        store.checkpoint("lab_records").await.unwrap(),
        Some(0),
        "recording an error moves no checkpoint"
    );

    store
        .commit(
            "lab_records",
            CommitFence::new(0, 0),
            9,
            vec![lab("a", "w1", "STOPPED", 9)],
        )
        .await
        .unwrap();
    store
        .record_error("work_orders", None, "store unavailable")
        .await
        .unwrap();
    let status = store.status("lab_records").await.unwrap().unwrap();
    assert_eq!((status.position, status.error), (9, None), "a commit clears the error");
    assert!(
        store.status("work_orders").await.unwrap().unwrap().error.is_some(),
        "errors are per projection"
    );
}

pub async fn a_commit_of_another_generation_writes_nothing(store: Arc<dyn ReadModelStore>) {
    assert_eq!(store.generation("lab_records").await.unwrap(), 0);
    store
        .commit(
            "lab_records",
            CommitFence::new(0, 0),
            4,
            vec![lab("a", "w1", "STOPPED", 4)],
        )
        .await
        .unwrap();
    let refused = store
        .commit(
            "lab_records",
            CommitFence::new(1, 4),
            8,
            vec![lab("a", "w1", "STARTED", 8), lab("b", "w1", "STARTED", 8)],
        )
        .await;
    assert_eq!(
        refused,
        Err(ReadModelError::Superseded {
            projection: "lab_records".into(),
            current: 0
        })
    );
    assert_eq!(store.checkpoint("lab_records").await.unwrap(), Some(4));
    let loaded = store
        .load_documents("lab_records", &["a".into(), "b".into()])
        .await
        .unwrap();
    assert_eq!(loaded.len(), 1, "no document of the refused commit");
    assert_eq!(loaded["a"].body["state"], "STOPPED");
}

/// A commit that does not start where the stored checkpoint is (another runner moved it) is
/// refused and writes nothing, on a projection that never committed too.
pub async fn a_commit_from_a_moved_checkpoint_writes_nothing(store: Arc<dyn ReadModelStore>) {
    store
        .commit(
            "lab_records",
            CommitFence::new(0, 0),
            4,
            vec![lab("a", "w1", "STOPPED", 4)],
        )
        .await
        .unwrap();
    let late = store
        .commit(
            "lab_records",
            CommitFence::new(0, 0),
            6,
            vec![lab("a", "w1", "STARTED", 6)],
        )
        .await;
    assert_eq!(
        late,
        Err(ReadModelError::Fenced {
            projection: "lab_records".into(),
            expected: 0,
            found: 4
        })
    );
    let doc = parse(&store.get("lab_records", "a").await.unwrap().unwrap());
    assert_eq!(doc["state"], "STOPPED");
    assert_eq!(doc["operation_history"].as_array().unwrap().len(), 1);
    assert_eq!(store.checkpoint("lab_records").await.unwrap(), Some(4));
    let ahead = store.commit("work_orders", CommitFence::new(0, 7), 9, Vec::new()).await;
    assert!(
        matches!(ahead, Err(ReadModelError::Fenced { found: 0, .. })),
        "a projection that never committed is at 0: {ahead:?}"
    );
    assert_eq!(store.checkpoint("work_orders").await.unwrap(), None);
}

pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn ReadModelStore>>,
{
    documents_history_and_checkpoint(fresh().await).await;
    filters_sorting_and_paging(fresh().await).await;
    projection_errors_are_kept_until_the_next_commit(fresh().await).await;
    a_commit_of_another_generation_writes_nothing(fresh().await).await;
    a_commit_from_a_moved_checkpoint_writes_nothing(fresh().await).await;
}
