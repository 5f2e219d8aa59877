//! The writer task of the PostgreSQL event log: group commit, one per process.
//!
//! Appends arrive on a channel; the writer takes every request waiting (up to [`MAX_BATCH`]) and
//! runs them as one batch ([`super::log_batch`]), keeping a [`HeadCache`] of the streams it
//! wrote. A batch that fails as a whole is rerun append by append, so one bad append fails
//! alone.

use super::log_batch::{append_batch, Append, BatchError, BatchOutcome, HeadCache, LogStatements, TransactionMode};
use super::rows::unavailable;
use super::PostgresTarget;
use lablet_application::ports::{AppendOutcome, EventStoreError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::Client;

/// Appends per transaction at most.
pub const MAX_BATCH: usize = 512;

pub struct AppendRequest {
    pub append: Append,
    pub reply: oneshot::Sender<Result<AppendOutcome, EventStoreError>>,
}

/// Runs `appends` in one transaction and commits it; a collision found on the cached heads is
/// judged again with lookups.
async fn commit(
    client: &Client,
    statements: &LogStatements,
    cache: &mut HeadCache,
    appends: &[Append],
) -> Result<BatchOutcome, BatchError> {
    match append_batch(client, statements, appends, TransactionMode::Own, Some(cache)).await {
        Err(BatchError::Collision) => append_batch(client, statements, appends, TransactionMode::Own, None).await,
        other => other,
    }
}

/// The writer task: batches what waits on `requests`, commits, answers, announces the head.
pub async fn run(target: PostgresTarget, mut requests: mpsc::Receiver<AppendRequest>, head: watch::Sender<u64>) {
    let mut connection: Option<(Client, LogStatements)> = None;
    let mut cache = HeadCache::default();
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if connection.as_ref().is_none_or(|(client, _)| client.is_closed()) {
            connection = match connect(&target).await {
                Ok(connected) => Some(connected),
                Err(err) => {
                    tracing::error!(error = %err, "the event log writer cannot connect");
                    answer_all(batch, &unavailable(&err));
                    continue;
                }
            };
        }
        let Some((connected, statements)) = connection.as_mut() else {
            continue;
        };
        let (appends, replies): (Vec<Append>, Vec<_>) = batch.into_iter().map(|r| (r.append, r.reply)).unzip();
        let answers = match commit(connected, statements, &mut cache, &appends).await {
            Ok(outcome) => {
                announce(&head, outcome.head);
                outcome.answers
            }
            Err(err) if appends.len() > 1 => {
                tracing::warn!(error = %err, appends = appends.len(), "an event log batch failed; rerunning its appends one by one");
                let mut answers = Vec::with_capacity(appends.len());
                for append in appends {
                    answers.push(
                        match commit(connected, statements, &mut cache, std::slice::from_ref(&append)).await {
                            Ok(outcome) => {
                                announce(&head, outcome.head);
                                outcome
                                    .answers
                                    .into_iter()
                                    .next()
                                    .unwrap_or_else(|| Err(unavailable("no answer")))
                            }
                            Err(err) => Err(unavailable(err)),
                        },
                    );
                }
                answers
            }
            Err(err) => {
                tracing::error!(error = %err, "an event log append failed; nothing of it was committed");
                vec![Err(unavailable(err))]
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}

/// A writer connection with its statements prepared.
async fn connect(target: &PostgresTarget) -> Result<(Client, LogStatements), String> {
    let client = target.connect().await.map_err(|e| e.to_string())?;
    // A generic plan cannot see how many streams and ids a batch brings; plan each execution.
    client
        .batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
        .map_err(|e| e.to_string())?;
    let statements = LogStatements::prepare(&client).await.map_err(|e| e.to_string())?;
    Ok((client, statements))
}

fn answer_all(batch: Vec<AppendRequest>, error: &EventStoreError) {
    for request in batch {
        let _ = request.reply.send(Err(error.clone()));
    }
}

/// Moves the watched head forward (never back).
pub fn announce(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|current| {
        let moved = position > *current;
        *current = (*current).max(position);
        moved
    });
}
