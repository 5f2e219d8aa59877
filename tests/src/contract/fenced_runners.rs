//! Two projection runners on one read-model store: whatever the interleaving, the documents and
//! their histories equal those of a single replay. Run against every read-model adapter, with
//! the log written while both runners follow it.

use lablet_application::ports::{EventStore, ReadModelStore, SystemClock};
use lablet_application::progress::ProjectionProgress;
use lablet_application::repository::AggregateRepository;
use lablet_application::RequestContext;
use lablet_domain::lab_record::{lab_record_id, LabDetails, LabObservation, LabRecord, LabRecordCommand, LabState};
use lablet_domain::values::LabId;
use lablet_projections::projectors::LabRecordsProjector;
use lablet_projections::ProjectionRunner;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

const LABS: usize = 20;
const ROUNDS: usize = 8;
/// Observations of one lab in a row: runners with different batch sizes then cut a lab's
/// operations into different history segments.
const IN_A_ROW: usize = 3;

/// A runner reading `batch` events at a time: two runners with different batch sizes commit
/// overlapping, unequal ranges, as two replicas started at different moments do.
fn runner(events: &Arc<dyn EventStore>, store: &Arc<dyn ReadModelStore>, batch: usize) -> ProjectionRunner {
    ProjectionRunner::new(
        events.clone(),
        store.clone(),
        Arc::new(LabRecordsProjector),
        ProjectionProgress::default(),
    )
    .with_batch_size(batch)
}

/// Observes every lab `ROUNDS × IN_A_ROW` times, flipping its state each time.
async fn write_observations(events: Arc<dyn EventStore>) {
    let repository = AggregateRepository::new(events, Arc::new(SystemClock));
    let context = RequestContext::system();
    let worker_id = Uuid::from_u128(42);
    for (round, lab, flip) in
        (0..ROUNDS).flat_map(|r| (0..LABS).flat_map(move |l| (0..IN_A_ROW).map(move |f| (r, l, f))))
    {
        {
            let lab_id = LabId::parse(format!("lab-{lab:02}")).expect("a short id");
            let seen = LabObservation {
                worker_id,
                lab_id: lab_id.clone(),
                details: LabDetails::default(),
                state: if (round * IN_A_ROW + flip).is_multiple_of(2) {
                    LabState::Started
                } else {
                    LabState::Stopped
                },
                cml_created_at: None,
                cml_modified_at: None,
            };
            repository
                .execute::<LabRecord>(
                    lab_record_id(worker_id, &lab_id),
                    &LabRecordCommand::Observe(seen),
                    &context,
                )
                .await
                .expect("the observation is appended");
            tokio::task::yield_now().await;
        }
    }
}

async fn documents(store: &Arc<dyn ReadModelStore>) -> Vec<Value> {
    let worker_id = Uuid::from_u128(42);
    let mut all = Vec::new();
    for lab in 0..LABS {
        let id = lab_record_id(worker_id, &format!("lab-{lab:02}")).to_string();
        let raw = store
            .get("lab_records", &id)
            .await
            .expect("readable")
            .expect("every lab is projected");
        all.push(serde_json::from_str(raw.get()).expect("JSON"));
    }
    all
}

/// `shared` is followed live by two runners while the log grows (each keeps its own document
/// cache, as two replicas do); `replay` by one runner afterwards.
pub async fn two_runners_on_one_collection_equal_a_single_replay(
    events: Arc<dyn EventStore>,
    shared: Arc<dyn ReadModelStore>,
    replay: Arc<dyn ReadModelStore>,
) {
    let (stop, stopped) = watch::channel(false);
    let first = tokio::spawn(runner(&events, &shared, 7).run(stopped.clone()));
    let second = tokio::spawn(runner(&events, &shared, 3).run(stopped));
    write_observations(events.clone()).await;
    let head = events.head_position().await.expect("head");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while shared.checkpoint("lab_records").await.unwrap() != Some(head) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runners never reached the head"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send_replace(true);
    first.await.expect("first runner");
    second.await.expect("second runner");

    runner(&events, &replay, 100).catch_up().await.expect("the replay");
    assert_eq!(shared.checkpoint("lab_records").await.unwrap(), Some(head));
    let (followed, replayed) = (documents(&shared).await, documents(&replay).await);
    for (followed, replayed) in followed.iter().zip(&replayed) {
        let positions: Vec<u64> = followed["operation_history"]
            .as_array()
            .expect("a history")
            .iter()
            .map(|e| e["position"].as_u64().expect("a position"))
            .collect();
        let mut unique = positions.clone();
        unique.dedup();
        assert_eq!(positions, unique, "no position twice in {}", followed["id"]);
        assert_eq!(followed, replayed, "two runners equal one replay");
    }
}
