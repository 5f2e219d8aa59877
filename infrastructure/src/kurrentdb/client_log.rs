//! [`KurrentLog`] over the official KurrentDB client (gRPC).

use super::log::{AllFilter, KurrentLog, LogError, LogEvent, ProposedEvent};
use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, Position, ReadAllOptions, ReadStream,
    ReadStreamOptions, RecordedEvent, StreamPosition, StreamState, SubscribeToAllOptions, SubscriptionFilter,
};
use serde_json::value::RawValue;

pub struct ClientLog {
    client: Client,
}

impl ClientLog {
    /// A client for `connection` (a connection string the client parses); it connects lazily.
    pub fn new(connection: &str) -> Result<Self, String> {
        let settings: ClientSettings = connection
            .parse()
            .map_err(|e: kurrentdb::ClientSettingsParseError| e.message().to_owned())?;
        let client = Client::new(settings).map_err(|e| e.to_string())?;
        Ok(ClientLog { client })
    }
}

fn unavailable(error: kurrentdb::Error) -> LogError {
    LogError::Unavailable(error.to_string())
}

fn server_filter(filter: &AllFilter) -> SubscriptionFilter {
    match filter {
        AllFilter::StreamPrefix(prefix) => SubscriptionFilter::on_stream_name().add_prefix(prefix),
        AllFilter::ExcludeSystemEvents => SubscriptionFilter::on_event_type().exclude_system_events(),
    }
}

fn log_event(event: RecordedEvent) -> Result<LogEvent, LogError> {
    let data = String::from_utf8(event.data.to_vec())
        .map_err(|_| LogError::Malformed(format!("event {} has a payload that is not UTF-8", event.id)))?;
    Ok(LogEvent {
        stream: event.stream_id().to_owned(),
        id: event.id,
        revision: event.revision,
        event_type: event.event_type,
        data,
        metadata: event.custom_metadata.to_vec(),
        position: event.position.commit,
        created: event.created,
    })
}

/// Every event a read answers; a missing stream answers none.
async fn drain(read: kurrentdb::Result<ReadStream>) -> Result<Vec<LogEvent>, LogError> {
    let mut read = match read {
        Ok(read) => read,
        Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
        Err(other) => return Err(unavailable(other)),
    };
    let mut events = Vec::new();
    loop {
        match read.next().await {
            Ok(Some(resolved)) => {
                if let Some(event) = resolved.event {
                    events.push(log_event(event)?);
                }
            }
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
            Err(other) => return Err(unavailable(other)),
        }
    }
}

#[async_trait]
impl KurrentLog for ClientLog {
    async fn append(&self, stream: &str, expected: Option<u64>, events: Vec<ProposedEvent>) -> Result<u64, LogError> {
        let state = expected.map_or(StreamState::NoStream, StreamState::StreamRevision);
        let mut data = Vec::with_capacity(events.len());
        for event in events {
            let payload = RawValue::from_string(event.data).map_err(|e| LogError::Malformed(e.to_string()))?;
            let proposed = EventData::json(&event.event_type, &payload)
                .map_err(|e| LogError::Malformed(e.to_string()))?
                .id(event.id)
                .metadata(event.metadata.into());
            data.push(proposed);
        }
        let options = AppendToStreamOptions::default().stream_state(state);
        match self.client.append_to_stream(stream, &options, data).await {
            Ok(written) => Ok(written.position.commit),
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => Err(LogError::WrongExpectedRevision {
                current: match current {
                    CurrentRevision::Current(revision) => Some(revision),
                    CurrentRevision::NoStream => None,
                },
            }),
            Err(other) => Err(unavailable(other)),
        }
    }

    async fn read_stream_forward(&self, stream: &str, from: u64, max: usize) -> Result<Vec<LogEvent>, LogError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from))
            .max_count(max);
        drain(self.client.read_stream(stream, &options).await).await
    }

    async fn read_stream_backward(
        &self,
        stream: &str,
        from: Option<u64>,
        max: usize,
    ) -> Result<Vec<LogEvent>, LogError> {
        let options = ReadStreamOptions::default()
            .backwards()
            .position(from.map_or(StreamPosition::End, StreamPosition::Position))
            .max_count(max);
        drain(self.client.read_stream(stream, &options).await).await
    }

    async fn read_all_forward(&self, from: u64, filter: &AllFilter, max: usize) -> Result<Vec<LogEvent>, LogError> {
        let position = if from == 0 {
            StreamPosition::Start
        } else {
            StreamPosition::Position(Position {
                commit: from,
                prepare: from,
            })
        };
        let options = ReadAllOptions::default()
            .forwards()
            .position(position)
            .filter(server_filter(filter))
            .max_count(max);
        drain(self.client.read_all(&options).await).await
    }

    async fn last_in_all(&self, filter: &AllFilter) -> Result<Option<LogEvent>, LogError> {
        let options = ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .filter(server_filter(filter))
            .max_count(1);
        Ok(drain(self.client.read_all(&options).await).await?.pop())
    }

    async fn follow_all(&self, filter: &AllFilter) -> Result<BoxStream<'static, Result<u64, LogError>>, LogError> {
        let options = SubscribeToAllOptions::default()
            .position(StreamPosition::End)
            .filter(server_filter(filter));
        let subscription = self.client.subscribe_to_all(&options).await;
        Ok(stream::unfold(Some(subscription), |subscription| async move {
            let mut subscription = subscription?;
            match subscription.next().await {
                Ok(resolved) => {
                    let position = resolved
                        .commit_position
                        .or_else(|| resolved.event.as_ref().map(|e| e.position.commit))
                        .unwrap_or(0);
                    Some((Ok(position), Some(subscription)))
                }
                Err(e) => Some((Err(unavailable(e)), None)),
            }
        })
        .boxed())
    }
}
