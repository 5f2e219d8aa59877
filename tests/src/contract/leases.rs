//! The lease store contract: one holder per role at a time, a token that grows with every new
//! holder and stays on renewal, expiry and release, and the replicas' heartbeats.

use chrono::{DateTime, Duration, Utc};
use lablet_application::ports::LeaseStore;
use std::sync::Arc;

fn at(second: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + second, 0).expect("a moment")
}

pub async fn one_holder_at_a_time_with_growing_tokens(store: Arc<dyn LeaseStore>) {
    let role = "projection:lab_records";
    let first = store
        .acquire(role, "replica-a", at(0), at(10))
        .await
        .unwrap()
        .expect("free");
    assert_eq!(
        (first.holder.as_str(), first.token, first.expires_at),
        ("replica-a", 1, at(10))
    );
    assert_eq!(
        store.acquire(role, "replica-b", at(5), at(15)).await.unwrap(),
        None,
        "held by another until it expires"
    );
    let renewed = store
        .acquire(role, "replica-a", at(6), at(16))
        .await
        .unwrap()
        .expect("renewed");
    assert_eq!(
        (renewed.token, renewed.expires_at),
        (1, at(16)),
        "a renewal keeps the token"
    );
    let taken = store
        .acquire(role, "replica-b", at(16), at(26))
        .await
        .unwrap()
        .expect("expired");
    assert_eq!((taken.holder.as_str(), taken.token), ("replica-b", 2));
    assert_eq!(store.token(role).await.unwrap(), Some(2), "the current token");
    assert_eq!(store.token("never-taken").await.unwrap(), None);
    assert_eq!(
        store.acquire(role, "replica-a", at(17), at(27)).await.unwrap(),
        None,
        "the old holder cannot renew what it lost"
    );
    store.release(role, "replica-a").await.unwrap();
    assert!(
        store
            .acquire(role, "replica-a", at(18), at(28))
            .await
            .unwrap()
            .is_none(),
        "only the holder releases"
    );
    store.release(role, "replica-b").await.unwrap();
    let after_release = store
        .acquire(role, "replica-a", at(18), at(28))
        .await
        .unwrap()
        .expect("released");
    assert_eq!(after_release.token, 3);

    let other = store
        .acquire("outbox:nats", "replica-b", at(18), at(28))
        .await
        .unwrap()
        .expect("free");
    assert_eq!(other.token, 1, "tokens are per role");
    let roles: Vec<(String, String, u64)> = store
        .leases()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.role, l.holder, l.token))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("outbox:nats".into(), "replica-b".into(), 1),
            (role.into(), "replica-a".into(), 3)
        ]
    );
}

pub async fn replicas_are_seen_by_their_heartbeats(store: Arc<dyn LeaseStore>) {
    store.heartbeat("replica-a", at(0), at(1)).await.unwrap();
    store.heartbeat("replica-b", at(0), at(2)).await.unwrap();
    store.heartbeat("replica-a", at(0), at(30)).await.unwrap();
    let seen = store.replicas(at(30) - Duration::seconds(10)).await.unwrap();
    assert_eq!(seen.len(), 1, "replica-b was last seen long ago");
    assert_eq!(
        (seen[0].id.as_str(), seen[0].started_at, seen[0].seen_at),
        ("replica-a", at(0), at(30))
    );
}

/// Many replicas race for one free role: exactly one wins.
pub async fn a_race_for_a_free_role_has_one_winner(store: Arc<dyn LeaseStore>) {
    let racers = (0..8).map(|n| {
        let store = store.clone();
        tokio::spawn(async move { store.acquire("inbox", &format!("replica-{n}"), at(0), at(10)).await })
    });
    let mut winners = 0;
    for racer in racers {
        if racer.await.expect("racer").expect("store answers").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn LeaseStore>>,
{
    one_holder_at_a_time_with_growing_tokens(fresh().await).await;
    replicas_are_seen_by_their_heartbeats(fresh().await).await;
    a_race_for_a_free_role_has_one_winner(fresh().await).await;
}
