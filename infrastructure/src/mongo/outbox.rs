//! The outbox relays' state on MongoDB: `outbox_checkpoints` (`_id` = sink: the relay's mark),
//! `outbox_delivered` (`_id` = `{sink, subject}`: subjects delivered beyond the checkpoint) and
//! `outbox_parked` (`_id` = `{sink, event_id}`). Times are RFC 3339 text with microseconds, as
//! the other engines keep them; ids are text.
//!
//! A relay's writes are checked against its lease (`leases`) first. MongoDB has no transaction
//! across collections here, so the check and the write are two steps: a replica paused between
//! them can still make one write after its successor took over (on SQLite and PostgreSQL the
//! check and the write are one transaction).

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use lablet_application::ports::{Clock, SystemClock};
use lablet_application::ports::{LeaseFence, OutboxStore, OutboxStoreError, ParkedEvent, RelayMark, SinkProgress};
use mongodb::bson::{doc, Bson, Document};
use mongodb::{Collection, Database};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Clone)]
pub struct MongoOutboxStore {
    database: Database,
}

fn unavailable(err: impl std::fmt::Display) -> OutboxStoreError {
    OutboxStoreError::Unavailable(format!("MongoDB: {err}"))
}

fn corrupt(err: impl std::fmt::Display) -> OutboxStoreError {
    OutboxStoreError::Corrupt(err.to_string())
}

fn text_of(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn time_of(text: &str) -> Result<DateTime<Utc>, OutboxStoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(corrupt)
}

fn id_of(text: &str) -> Result<Uuid, OutboxStoreError> {
    Uuid::parse_str(text).map_err(corrupt)
}

/// The stored form of a parked event, apart from `attempts` (added on every park).
pub fn parked_fields(event: &ParkedEvent) -> Document {
    doc! {
        "last_error": &event.last_error,
        "held_behind": event.held_behind.map(|id| id.to_string()),
        "parked_at": text_of(event.parked_at),
    }
}

fn parked_of(document: &Document) -> Result<ParkedEvent, OutboxStoreError> {
    let text = |key: &str| document.get_str(key).map_err(corrupt);
    let optional = |key: &str| match document.get(key) {
        Some(Bson::String(value)) => Some(value.clone()),
        _ => None,
    };
    Ok(ParkedEvent {
        sink: text("sink")?.to_owned(),
        event_id: id_of(text("event_id")?)?,
        position: document.get_i64("position").map_err(corrupt)? as u64,
        subject: text("subject")?.to_owned(),
        event_type: text("event_type")?.to_owned(),
        attempts: document.get_i64("attempts").map_err(corrupt)? as u32,
        last_error: text("last_error")?.to_owned(),
        held_behind: optional("held_behind").as_deref().map(id_of).transpose()?,
        parked_at: time_of(text("parked_at")?)?,
        redrive_requested_at: optional("redrive_requested_at").as_deref().map(time_of).transpose()?,
    })
}

impl MongoOutboxStore {
    pub fn new(database: Database) -> Self {
        MongoOutboxStore { database }
    }

    fn checkpoints(&self) -> Collection<Document> {
        self.database.collection("outbox_checkpoints")
    }

    fn delivered(&self) -> Collection<Document> {
        self.database.collection("outbox_delivered")
    }

    fn parked_events(&self) -> Collection<Document> {
        self.database.collection("outbox_parked")
    }

    /// Refuses a write made under `fence` once another replica has taken the lease.
    async fn check_fence(&self, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        let current = super::leases::current_token(&self.database, &fence.role)
            .await
            .map_err(unavailable)?;
        match current {
            Some(current) if current > fence.token => Err(OutboxStoreError::Fenced {
                role: fence.role.clone(),
                token: fence.token,
                current,
            }),
            _ => Ok(()),
        }
    }

    async fn find_parked(&self, filter: Document, limit: Option<i64>) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let parked_events = self.parked_events();
        let mut find = parked_events.find(filter).sort(doc! { "position": 1, "sink": 1 });
        if let Some(limit) = limit {
            find = find.limit(limit);
        }
        let documents: Vec<Document> = find
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        documents.iter().map(parked_of).collect()
    }
}

#[async_trait]
impl OutboxStore for MongoOutboxStore {
    async fn checkpoint(&self, sink: &str) -> Result<u64, OutboxStoreError> {
        let found = self
            .checkpoints()
            .find_one(doc! { "_id": sink })
            .await
            .map_err(unavailable)?;
        Ok(found.and_then(|d| d.get_i64("position").ok()).map_or(0, |p| p as u64))
    }

    async fn save_checkpoint(&self, sink: &str, mark: RelayMark, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        self.check_fence(fence).await?;
        self.checkpoints()
            .update_one(
                doc! { "_id": sink },
                doc! {
                    "$max": { "position": mark.checkpoint as i64, "read_position": mark.read_position as i64 },
                    "$set": { "outstanding": mark.outstanding as i64, "updated_at": text_of(SystemClock.now()) },
                },
            )
            .upsert(true)
            .await
            .map_err(unavailable)?;
        // The stored checkpoint is at least this one: what it passed is covered by it.
        self.delivered()
            .delete_many(doc! { "sink": sink, "position": { "$lte": mark.checkpoint as i64 } })
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn record_delivered(
        &self,
        sink: &str,
        subject: &str,
        position: u64,
        fence: &LeaseFence,
    ) -> Result<(), OutboxStoreError> {
        self.check_fence(fence).await?;
        self.delivered()
            .update_one(
                doc! { "_id": { "sink": sink, "subject": subject } },
                doc! {
                    "$max": { "position": position as i64 },
                    "$setOnInsert": { "sink": sink, "subject": subject },
                },
            )
            .upsert(true)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn delivered_beyond_checkpoint(&self, sink: &str) -> Result<Vec<(String, u64)>, OutboxStoreError> {
        let checkpoint = self.checkpoint(sink).await? as i64;
        let found: Vec<Document> = self
            .delivered()
            .find(doc! { "sink": sink, "position": { "$gt": checkpoint } })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found
            .iter()
            .map(|d| {
                let subject = d.get_str("subject").map_err(corrupt)?.to_owned();
                Ok((subject, d.get_i64("position").map_err(corrupt)? as u64))
            })
            .collect()
    }

    async fn park(&self, events: Vec<ParkedEvent>, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        self.check_fence(fence).await?;
        for event in &events {
            let event_id = event.event_id.to_string();
            self.parked_events()
                .update_one(
                    doc! { "_id": { "sink": &event.sink, "event_id": &event_id } },
                    doc! {
                        "$set": parked_fields(event),
                        "$inc": { "attempts": event.attempts as i64 },
                        "$setOnInsert": {
                            "sink": &event.sink,
                            "event_id": &event_id,
                            "position": event.position as i64,
                            "subject": &event.subject,
                            "event_type": &event.event_type,
                            "redrive_requested_at": Bson::Null,
                        },
                    },
                )
                .upsert(true)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn unpark(&self, sink: &str, event_id: Uuid, fence: &LeaseFence) -> Result<(), OutboxStoreError> {
        self.check_fence(fence).await?;
        self.parked_events()
            .delete_one(doc! { "_id": { "sink": sink, "event_id": event_id.to_string() } })
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn parked(&self, sink: Option<&str>, limit: usize) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        let filter = sink.map_or_else(Document::new, |sink| doc! { "sink": sink });
        self.find_parked(filter, Some(i64::try_from(limit).unwrap_or(i64::MAX)))
            .await
    }

    async fn parked_subjects(&self, sink: &str) -> Result<Vec<(String, Uuid)>, OutboxStoreError> {
        let pipeline = [
            doc! { "$match": { "sink": sink } },
            doc! { "$sort": { "position": 1 } },
            doc! { "$group": { "_id": "$subject", "head": { "$first": "$event_id" } } },
        ];
        let groups: Vec<Document> = self
            .parked_events()
            .aggregate(pipeline)
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        groups
            .iter()
            .map(|group| {
                let subject = group.get_str("_id").map_err(corrupt)?.to_owned();
                Ok((subject, id_of(group.get_str("head").map_err(corrupt)?)?))
            })
            .collect()
    }

    async fn request_redrive(&self, event_id: Option<Uuid>) -> Result<u64, OutboxStoreError> {
        let filter = event_id.map_or_else(Document::new, |id| doc! { "event_id": id.to_string() });
        self.parked_events()
            .update_many(
                filter,
                doc! { "$set": { "redrive_requested_at": text_of(SystemClock.now()) } },
            )
            .await
            .map(|result| result.matched_count)
            .map_err(unavailable)
    }

    async fn take_redrive_requests(
        &self,
        sink: &str,
        fence: &LeaseFence,
    ) -> Result<Vec<ParkedEvent>, OutboxStoreError> {
        self.check_fence(fence).await?;
        let requested = doc! { "sink": sink, "redrive_requested_at": { "$type": "string" } };
        let subjects: Vec<Bson> = self
            .parked_events()
            .distinct("subject", requested.clone())
            .await
            .map_err(unavailable)?;
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let parked = self
            .find_parked(doc! { "sink": sink, "subject": { "$in": subjects } }, None)
            .await?;
        self.parked_events()
            .update_many(requested, doc! { "$set": { "redrive_requested_at": Bson::Null } })
            .await
            .map_err(unavailable)?;
        Ok(parked)
    }

    async fn progress(&self) -> Result<Vec<SinkProgress>, OutboxStoreError> {
        let mut sinks: BTreeMap<String, SinkProgress> = BTreeMap::new();
        let checkpoints: Vec<Document> = self
            .checkpoints()
            .find(doc! {})
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        for checkpoint in checkpoints {
            let sink = checkpoint.get_str("_id").map_err(corrupt)?.to_owned();
            let number = |key: &str| checkpoint.get_i64(key).map_or(0, |n| n as u64);
            sinks.insert(
                sink.clone(),
                SinkProgress {
                    sink,
                    checkpoint: checkpoint.get_i64("position").map_err(corrupt)? as u64,
                    read_position: number("read_position"),
                    outstanding: number("outstanding"),
                    parked: 0,
                },
            );
        }
        let counts: Vec<Document> = self
            .parked_events()
            .aggregate([doc! { "$group": { "_id": "$sink", "parked": { "$sum": 1_i64 } } }])
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        for count in counts {
            let sink = count.get_str("_id").map_err(corrupt)?.to_owned();
            let parked = count.get_i64("parked").map_err(corrupt)? as u64;
            sinks
                .entry(sink.clone())
                .or_insert(SinkProgress {
                    sink,
                    checkpoint: 0,
                    read_position: 0,
                    outstanding: 0,
                    parked: 0,
                })
                .parked = parked;
        }
        Ok(sinks.into_values().collect())
    }
}
