//! Learns of appends made by other processes: `LISTEN lablet_events` on a connection of its
//! own, each notification carrying the new head position. Notifications can be missed (the
//! connection drops, a process crashes between commit and delivery), so the head is also read
//! every [`POLL_EVERY`]; polling is only the fallback, never the main path.

use super::log_writer::announce;
use super::PostgresTarget;
use futures_util::stream::poll_fn;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

/// How often the head is read whatever the notifications say.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long to wait before connecting again after the listening connection failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

const HEAD: &str = include_str!("sql/log_head.sql");
/// Subscribes to the commit notifications on [`EVENTS_CHANNEL`].
const LISTEN: &str = include_str!("sql/listen.sql");

/// Follows the log's head into `head`; runs until aborted (the store does when dropped).
pub async fn run(target: PostgresTarget, head: watch::Sender<u64>) {
    loop {
        if let Err(err) = listen(&target, &head).await {
            tracing::warn!(error = %err, "the event log listener lost its connection; reconnecting");
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

async fn listen(target: &PostgresTarget, head: &watch::Sender<u64>) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = target.config.connect(NoTls).await?;
    let (notified, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(note)) => {
                    if notified.send(note.payload().parse::<u64>().ok()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    });
    client.batch_execute(LISTEN).await?;
    let mut poll = tokio::time::interval(POLL_EVERY);
    let outcome = loop {
        tokio::select! {
            note = notifications.recv() => match note {
                Some(Some(position)) => announce(head, position),
                Some(None) => {}
                None => break Ok(()),
            },
            _ = poll.tick() => match client.query_one(HEAD, &[]).await {
                Ok(row) => announce(head, row.get::<_, i64>(0) as u64),
                Err(err) => break Err(err),
            },
        }
    };
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_listens_on_the_channel_the_writer_notifies() {
        assert!(super::LISTEN.contains(crate::postgres::EVENTS_CHANNEL));
    }
}
