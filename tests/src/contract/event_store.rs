//! The event store contract: expected versions, idempotent appends, ordering, reading and
//! subscribing. Each check takes a fresh, empty store.

use chrono::Utc;
use lablet_application::envelope::{truncate_to_micros, EventMetadata, NewEvent};
use lablet_application::ports::{EventStore, EventStoreError, ExpectedVersion};
use lablet_application::subscription::Subscription;
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "test.happened".into(),
        schema_version: 1,
        occurred_at: truncate_to_micros(Utc::now()),
        payload: RawValue::from_string(format!(r#"{{"n":{n}}}"#)).expect("valid JSON"),
        metadata: EventMetadata {
            correlation_id: Some("corr".into()),
            causation_id: None,
            actor: "tester".into(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        },
    }
}

pub async fn expected_version_semantics(store: Arc<dyn EventStore>) {
    let s = "test-expected";
    let first = store
        .append(s, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    assert_eq!(first.version, 2);
    assert!(first.first_position < first.last_position);
    assert!(!first.deduplicated);
    let appended: Vec<u64> = store
        .read_all(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(
        appended,
        vec![first.first_position, first.last_position],
        "the outcome names the events' positions"
    );

    let again = store
        .append(s, ExpectedVersion::NoStream, vec![event(3)])
        .await
        .unwrap_err();
    assert_eq!(
        again,
        EventStoreError::WrongExpectedVersion {
            stream: s.into(),
            expected: ExpectedVersion::NoStream,
            actual: Some(2)
        }
    );
    let stale = store
        .append(s, ExpectedVersion::Exact(1), vec![event(3)])
        .await
        .unwrap_err();
    assert!(matches!(
        stale,
        EventStoreError::WrongExpectedVersion { actual: Some(2), .. }
    ));
    assert_eq!(
        store
            .append(s, ExpectedVersion::Exact(2), vec![event(3)])
            .await
            .unwrap()
            .version,
        3
    );
    assert_eq!(
        store
            .append(s, ExpectedVersion::StreamExists, vec![event(4)])
            .await
            .unwrap()
            .version,
        4
    );
    assert_eq!(
        store
            .append(s, ExpectedVersion::Any, vec![event(5)])
            .await
            .unwrap()
            .version,
        5
    );

    let missing = store
        .append("test-missing", ExpectedVersion::StreamExists, vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        EventStoreError::WrongExpectedVersion { actual: None, .. }
    ));
    let missing = store
        .append("test-missing", ExpectedVersion::Exact(0), vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        EventStoreError::WrongExpectedVersion { actual: None, .. }
    ));
    assert_eq!(
        store
            .append("test-any", ExpectedVersion::Any, vec![event(1)])
            .await
            .unwrap()
            .version,
        1
    );
    // Refused appends wrote nothing.
    assert_eq!(store.read_stream(s, 1, 100).await.unwrap().len(), 5);
    assert_eq!(store.read_stream("test-missing", 1, 100).await.unwrap().len(), 0);
}

pub async fn idempotent_append(store: Arc<dyn EventStore>) {
    let s = "test-idempotent";
    let events = vec![event(1), event(2)];
    let first = store
        .append(s, ExpectedVersion::NoStream, events.clone())
        .await
        .unwrap();
    // A retry after a lost answer: same ids, same expectation; the stream has moved meanwhile.
    let retried = store
        .append(s, ExpectedVersion::NoStream, events.clone())
        .await
        .unwrap();
    assert!(retried.deduplicated);
    assert_eq!(
        (retried.version, retried.first_position, retried.last_position),
        (first.version, first.first_position, first.last_position)
    );
    store
        .append(s, ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .unwrap();
    let late_retry = store.append(s, ExpectedVersion::Any, events.clone()).await.unwrap();
    assert_eq!((late_retry.version, late_retry.last_position), (2, first.last_position));
    assert_eq!(
        store.read_stream(s, 1, 100).await.unwrap().len(),
        3,
        "no duplicate was written"
    );
    // A stored id of this stream beside a new one is a reuse, not a retry, and writes nothing.
    let mixed = store
        .append(s, ExpectedVersion::Any, vec![event(7), events[1].clone()])
        .await
        .unwrap_err();
    assert_eq!(
        mixed,
        EventStoreError::EventIdReused {
            event_id: events[1].event_id
        }
    );
    assert_eq!(store.read_stream(s, 1, 100).await.unwrap().len(), 3);

    let empty = store.append(s, ExpectedVersion::Any, vec![]).await.unwrap_err();
    assert!(matches!(empty, EventStoreError::InvalidAppend(_)));
    let twice = event(4);
    let doubled = store
        .append(s, ExpectedVersion::Any, vec![twice.clone(), twice])
        .await
        .unwrap_err();
    assert!(matches!(doubled, EventStoreError::InvalidAppend(_)));
}

/// An id stored in one stream and appended to another is a reuse, not a retry, and writes
/// nothing. Engines that keep no index of event ids across streams (KurrentDB) cannot tell.
pub async fn id_reused_in_another_stream_is_refused(store: Arc<dyn EventStore>) {
    let stored = event(1);
    store
        .append("test-first", ExpectedVersion::NoStream, vec![stored.clone()])
        .await
        .unwrap();
    let reused = store
        .append("test-other", ExpectedVersion::Any, vec![event(9), stored.clone()])
        .await
        .unwrap_err();
    assert_eq!(
        reused,
        EventStoreError::EventIdReused {
            event_id: stored.event_id
        }
    );
    assert!(store.read_stream("test-other", 1, 10).await.unwrap().is_empty());
}

pub async fn reads_and_envelopes(store: Arc<dyn EventStore>) {
    for i in 0..5u64 {
        store
            .append(&format!("test-read{}", i % 2), ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[1].position > w[0].position),
        "positions are strictly increasing"
    );
    assert_eq!(store.head_position().await.unwrap(), all[4].position);
    // Lag in events, whatever the spacing of positions.
    assert_eq!(store.count_after(0, 100).await.unwrap(), 5);
    assert_eq!(store.count_after(all[1].position, 100).await.unwrap(), 3);
    assert_eq!(
        store.count_after(all[1].position, 2).await.unwrap(),
        2,
        "counting stops at the limit"
    );
    assert_eq!(store.count_after(all[4].position, 100).await.unwrap(), 0);
    let page = store.read_all(all[1].position, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![all[2].position, all[3].position]
    );

    let stream = store.read_stream("test-read0", 2, 100).await.unwrap();
    assert_eq!(stream.iter().map(|e| e.version).collect::<Vec<_>>(), vec![2, 3]);
    let whole = store.read_stream("test-read0", 1, 100).await.unwrap();
    let mut previous: Option<String> = None;
    for envelope in &whole {
        assert_eq!(
            envelope.hash,
            envelope.expected_hash(previous.as_deref()),
            "hash chain holds"
        );
        assert_eq!(envelope.actor, "tester");
        assert_eq!(envelope.correlation_id.as_deref(), Some("corr"));
        assert!(envelope.traceparent.is_some());
        assert_eq!(envelope.event_type, "test.happened");
        previous = Some(envelope.hash.clone());
    }
    assert_eq!(whole[0].payload.get(), r#"{"n":0}"#);
}

pub async fn concurrent_writers_never_lose_or_double(store: Arc<dyn EventStore>) {
    const WRITERS: usize = 16;
    const APPENDS: usize = 40;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut landed = 0u64;
            for n in 0..APPENDS {
                let stream = format!("test-contended{}", (writer + n) % 4);
                loop {
                    let head = store.read_stream(&stream, 1, 10_000).await.unwrap().len() as u64;
                    match store
                        .append(&stream, ExpectedVersion::for_loaded(head), vec![event(n as u64)])
                        .await
                    {
                        Ok(_) => break,
                        Err(EventStoreError::WrongExpectedVersion { .. }) => continue,
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
                landed += 1;
            }
            landed
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let all = store.read_all(0, 100_000).await.unwrap();
    assert_eq!(all.len() as u64, total);
    assert_eq!(total, (WRITERS * APPENDS) as u64);
    let ids: HashSet<Uuid> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), all.len(), "no event twice");
    assert!(all.windows(2).all(|w| w[1].position > w[0].position));
    for s in 0..4 {
        let versions: Vec<u64> = store
            .read_stream(&format!("test-contended{s}"), 1, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(
            versions,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "versions are gapless"
        );
    }
}

pub async fn subscription_catches_up_then_follows_live(store: Arc<dyn EventStore>) {
    for i in 0..3 {
        store
            .append("test-sub", ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let mut subscription = Subscription::new(store.clone(), 0, 2);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.extend(subscription.next_batch().await.unwrap().into_iter().map(|e| e.position));
    }
    let live = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            store
                .append("test-sub", ExpectedVersion::Any, vec![event(9)])
                .await
                .unwrap()
        })
    };
    // Woken by the commit, well before the fallback poll would fire.
    let started = std::time::Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(5), subscription.next_batch())
        .await
        .unwrap()
        .unwrap();
    let appended = live.await.unwrap();
    assert_eq!(
        next.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![appended.last_position]
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "woken on commit, not by polling"
    );
    assert_eq!(seen.len(), 3);
}

/// Runs every check, each on a fresh store from `fresh`.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn EventStore>>,
{
    id_reused_in_another_stream_is_refused(fresh().await).await;
    run_all_but_cross_stream_ids(fresh).await;
}

/// Every check but [`id_reused_in_another_stream_is_refused`], for engines whose event ids are
/// unique per stream only.
pub async fn run_all_but_cross_stream_ids<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn EventStore>>,
{
    expected_version_semantics(fresh().await).await;
    idempotent_append(fresh().await).await;
    reads_and_envelopes(fresh().await).await;
    concurrent_writers_never_lose_or_double(fresh().await).await;
    subscription_catches_up_then_follows_live(fresh().await).await;
}
