//! The outbox store contract: marks whose checkpoint and read position only move forward, the
//! subjects delivered beyond the checkpoint (forgotten once it passes them), parking (again),
//! unparking, the subjects held behind their oldest parked event, redrive requests and
//! progress; and every write refused, changing nothing, once it is made under a lease another
//! holder has taken since. Takes a fresh, empty store and the lease store beside it.

use chrono::{TimeDelta, Utc};
use lablet_application::ports::SinkProgress;
use lablet_application::ports::{LeaseFence, LeaseStore, OutboxStore, OutboxStoreError, ParkedEvent, RelayMark};
use std::sync::Arc;
use uuid::Uuid;

fn parked(sink: &str, subject: &str, position: u64) -> ParkedEvent {
    ParkedEvent {
        sink: sink.into(),
        event_id: Uuid::now_v7(),
        position,
        subject: subject.into(),
        event_type: "lab_record.state_changed".into(),
        attempts: 1,
        last_error: "receiver answered 500".into(),
        held_behind: None,
        parked_at: chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap(),
        redrive_requested_at: None,
    }
}

pub async fn run_all(store: Arc<dyn OutboxStore>, leases: Arc<dyn LeaseStore>) {
    let now = Utc::now();
    let lease = leases
        .acquire("outbox:http", "replica-1", now, now + TimeDelta::seconds(60))
        .await
        .unwrap()
        .expect("a free lease");
    let f = &LeaseFence::from(&lease);
    // Checkpoints and read positions only move forward; the outstanding count is replaced.
    let mark = |checkpoint, read_position, outstanding| RelayMark {
        checkpoint,
        read_position,
        outstanding,
    };
    assert_eq!(store.checkpoint("http").await.unwrap(), 0);
    store.save_checkpoint("http", mark(5, 30, 9), f).await.unwrap();
    assert!(store.delivered_beyond_checkpoint("http").await.unwrap().is_empty());

    // Subjects delivered beyond the checkpoint are remembered (moving forward only) until the
    // checkpoint passes them.
    store.record_delivered("http", "s1", 12, f).await.unwrap();
    store.record_delivered("http", "s1", 9, f).await.unwrap();
    store.record_delivered("http", "s2", 6, f).await.unwrap();
    store.record_delivered("http", "s3", 20, f).await.unwrap();
    store.record_delivered("nats", "s1", 30, f).await.unwrap();
    let mut beyond = store.delivered_beyond_checkpoint("http").await.unwrap();
    beyond.sort();
    assert_eq!(
        beyond,
        [("s1".to_owned(), 12), ("s2".to_owned(), 6), ("s3".to_owned(), 20)]
    );
    store.save_checkpoint("http", mark(7, 25, 2), f).await.unwrap();
    assert_eq!(store.checkpoint("http").await.unwrap(), 7);
    let mut beyond = store.delivered_beyond_checkpoint("http").await.unwrap();
    beyond.sort();
    assert_eq!(
        beyond,
        [("s1".to_owned(), 12), ("s3".to_owned(), 20)],
        "s2 is behind the checkpoint"
    );
    store.save_checkpoint("http", mark(5, 20, 2), f).await.unwrap();
    assert_eq!(store.checkpoint("http").await.unwrap(), 7, "never back");
    assert_eq!(
        store.delivered_beyond_checkpoint("nats").await.unwrap(),
        [("s1".to_owned(), 30)]
    );

    // Parking, and parking again after a failed redrive, adds the attempts.
    let events = vec![
        parked("http", "a", 9),
        parked("http", "a", 3),
        parked("http", "b", 4),
        parked("nats", "a", 3),
    ];
    let (a_head, b_head) = (events[1].event_id, events[2].event_id);
    store.park(events.clone(), f).await.unwrap();
    let mut again = events[0].clone();
    again.last_error = "still 500".into();
    store.park(vec![again], f).await.unwrap();
    let http = store.parked(Some("http"), 10).await.unwrap();
    assert_eq!(http.iter().map(|p| p.position).collect::<Vec<_>>(), [3, 4, 9]);
    assert_eq!((http[2].attempts, http[2].last_error.as_str()), (2, "still 500"));
    assert_eq!(http[0], events[1], "a parked event reads back as it was parked");
    assert_eq!(store.parked(None, 10).await.unwrap().len(), 4);
    assert_eq!(store.parked(None, 2).await.unwrap().len(), 2);

    let mut subjects = store.parked_subjects("http").await.unwrap();
    subjects.sort();
    assert_eq!(subjects, vec![("a".to_owned(), a_head), ("b".to_owned(), b_head)]);
    assert!(store.parked_subjects("mqtt").await.unwrap().is_empty());

    // A redrive of one event takes its whole subject, in order, once.
    assert_eq!(store.request_redrive(Some(events[0].event_id)).await.unwrap(), 1);
    let taken = store.take_redrive_requests("http", f).await.unwrap();
    assert_eq!(taken.iter().map(|p| p.position).collect::<Vec<_>>(), [3, 9]);
    assert!(taken.iter().any(|p| p.redrive_requested_at.is_some()));
    assert!(store.take_redrive_requests("http", f).await.unwrap().is_empty());
    assert_eq!(store.request_redrive(None).await.unwrap(), 4);
    assert_eq!(store.take_redrive_requests("nats", f).await.unwrap().len(), 1);

    store.unpark("http", a_head, f).await.unwrap();
    store.unpark("http", events[0].event_id, f).await.unwrap();
    assert_eq!(
        store.progress().await.unwrap(),
        vec![
            SinkProgress {
                sink: "http".into(),
                checkpoint: 7,
                read_position: 30,
                outstanding: 2,
                parked: 1
            },
            SinkProgress {
                sink: "nats".into(),
                checkpoint: 0,
                read_position: 0,
                outstanding: 0,
                parked: 1
            },
        ]
    );

    a_write_under_a_superseded_lease_changes_nothing(store, leases, lease).await;
}

/// Another replica takes the lease after it expired; every write under the old token is
/// refused and changes nothing, and the new holder's writes land.
async fn a_write_under_a_superseded_lease_changes_nothing(
    store: Arc<dyn OutboxStore>,
    leases: Arc<dyn LeaseStore>,
    old: lablet_application::ports::Lease,
) {
    let later = old.expires_at + TimeDelta::seconds(1);
    let new = leases
        .acquire("outbox:http", "replica-2", later, later + TimeDelta::seconds(60))
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert!(new.token > old.token);
    let stale = &LeaseFence::from(&old);
    let before = (
        store.progress().await.unwrap(),
        store.parked(None, 100).await.unwrap(),
        store.delivered_beyond_checkpoint("http").await.unwrap(),
    );
    let fenced = |result: Result<(), OutboxStoreError>| {
        assert!(
            matches!(&result, Err(OutboxStoreError::Fenced { token, current, .. }) if *token == old.token && *current == new.token),
            "{result:?}"
        );
    };
    let mark = RelayMark {
        checkpoint: 99,
        read_position: 99,
        outstanding: 0,
    };
    fenced(store.save_checkpoint("http", mark, stale).await);
    fenced(store.record_delivered("http", "late", 120, stale).await);
    fenced(store.park(vec![parked("http", "late", 110)], stale).await);
    let parked_now = store.parked(Some("http"), 1).await.unwrap();
    fenced(store.unpark("http", parked_now[0].event_id, stale).await);
    store.request_redrive(None).await.unwrap();
    fenced(store.take_redrive_requests("http", stale).await.map(|_| ()));
    let after = (
        store.progress().await.unwrap(),
        store.parked(None, 100).await.unwrap(),
        store.delivered_beyond_checkpoint("http").await.unwrap(),
    );
    assert_eq!(after.0, before.0, "marks unchanged");
    assert_eq!(after.2, before.2, "deliveries unchanged");
    assert_eq!(after.1.len(), before.1.len(), "nothing parked or unparked");
    let current = &LeaseFence::from(&new);
    store.save_checkpoint("http", mark, current).await.unwrap();
    assert_eq!(store.checkpoint("http").await.unwrap(), 99, "the new holder writes");
    assert!(!store.take_redrive_requests("http", current).await.unwrap().is_empty());
}
