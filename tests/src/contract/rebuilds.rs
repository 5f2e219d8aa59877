//! The rebuild contract: a staging area starts empty and apart from the live read models; a
//! swap replaces one projection's documents, histories and checkpoint whole, refuses a staged
//! checkpoint behind the live one, moves the projection to its next generation (so a runner
//! that started before the swap cannot commit over it) and leaves other projections alone;
//! discarding the area deletes it.

use super::read_models::lab;
use lablet_application::ports::{CommitFence, ReadModelError, ReadModelRebuilds, ReadModelStore, SwapOutcome};
use serde_json::Value;
use std::sync::Arc;

async fn document<S: ReadModelStore + ?Sized>(store: &S, id: &str) -> Option<Value> {
    let raw = store.get("lab_records", id).await.expect("the store answers")?;
    Some(serde_json::from_str(raw.get()).expect("JSON"))
}

pub async fn a_staged_read_model_swaps_in_whole_and_fences_runners_that_started_before<S>(live: Arc<S>)
where
    S: ReadModelStore + ReadModelRebuilds,
{
    live.commit(
        "lab_records",
        CommitFence::new(0, 0),
        10,
        vec![lab("a", "w1", "STOPPED", 3), lab("b", "w1", "STARTED", 10)],
    )
    .await
    .unwrap();
    live.commit("work_orders", CommitFence::new(0, 0), 10, Vec::new())
        .await
        .unwrap();

    let empty = live.stage("lab_records").await.unwrap();
    assert_eq!(
        empty.store.checkpoint("lab_records").await.unwrap(),
        None,
        "a staging area starts empty"
    );
    assert!(document(empty.store.as_ref(), "a").await.is_none());
    assert_eq!(
        live.swap_in(&empty, "lab_records").await.unwrap(),
        SwapOutcome::NothingRebuilt
    );
    live.discard(empty).await.unwrap();

    let behind = live.stage("lab_records").await.unwrap();
    behind
        .store
        .commit(
            "lab_records",
            CommitFence::new(0, 0),
            5,
            vec![lab("x", "w1", "STOPPED", 5)],
        )
        .await
        .unwrap();
    assert!(
        document(live.as_ref(), "x").await.is_none(),
        "staged documents are not live"
    );
    assert_eq!(
        live.swap_in(&behind, "lab_records").await.unwrap(),
        SwapOutcome::Behind { live: 10, rebuilt: 5 }
    );
    assert!(
        document(live.as_ref(), "x").await.is_none(),
        "a refused swap changes nothing"
    );
    assert_eq!(live.checkpoint("lab_records").await.unwrap(), Some(10));
    live.discard(behind).await.unwrap();

    let rebuilt = live.stage("lab_records").await.unwrap();
    rebuilt
        .store
        .commit(
            "lab_records",
            CommitFence::new(0, 0),
            12,
            vec![lab("a", "w1", "STARTED", 12), lab("c", "w2", "STOPPED", 7)],
        )
        .await
        .unwrap();
    assert_eq!(
        live.swap_in(&rebuilt, "lab_records").await.unwrap(),
        SwapOutcome::Swapped {
            position: 12,
            generation: 1,
            documents: 2
        }
    );
    live.discard(rebuilt).await.unwrap();
    assert!(
        document(live.as_ref(), "b").await.is_none(),
        "the old documents are gone"
    );
    let a = document(live.as_ref(), "a").await.expect("a is swapped in");
    assert_eq!(a["state"], "STARTED");
    assert_eq!(
        a["operation_history"].as_array().map(Vec::len),
        Some(1),
        "history comes from the rebuild: {a}"
    );
    assert!(document(live.as_ref(), "c").await.is_some());
    assert_eq!(live.checkpoint("lab_records").await.unwrap(), Some(12));
    assert_eq!(live.generation("lab_records").await.unwrap(), 1);
    assert_eq!(
        live.checkpoint("work_orders").await.unwrap(),
        Some(10),
        "other projections untouched"
    );
    let filtered = live
        .list(
            "lab_records",
            &lablet_application::ports::ListQuery {
                filters: vec![lablet_application::ports::read_models::Filter::Equals {
                    field: "worker_id",
                    value: "w2".into(),
                }],
                limit: 10,
                after_id: None,
                include_history: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        filtered.items.len(),
        1,
        "the swapped-in documents are filtered like the live ones"
    );

    let stale = live
        .commit(
            "lab_records",
            CommitFence::new(0, 12),
            13,
            vec![lab("b", "w1", "STOPPED", 13)],
        )
        .await;
    assert_eq!(
        stale,
        Err(ReadModelError::Superseded {
            projection: "lab_records".into(),
            current: 1
        })
    );
    assert!(
        document(live.as_ref(), "b").await.is_none(),
        "a superseded commit writes nothing"
    );
    live.commit(
        "lab_records",
        CommitFence::new(1, 12),
        13,
        vec![lab("b", "w1", "STOPPED", 13)],
    )
    .await
    .unwrap();
    assert_eq!(live.checkpoint("lab_records").await.unwrap(), Some(13));
}
