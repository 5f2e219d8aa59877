//! The rules every event store adapter applies to an append, whatever the engine: what makes an
//! append invalid, and what a retried append (the same event ids again) is answered.

use lablet_application::envelope::NewEvent;
use lablet_application::ports::{AppendOutcome, EventStoreError};
use uuid::Uuid;

/// Why an append cannot be taken at all: no events, no stream name, or an event id twice.
pub fn invalid_append(stream: &str, events: &[NewEvent]) -> Option<EventStoreError> {
    if events.is_empty() {
        return Some(EventStoreError::InvalidAppend(
            "an append needs at least one event".into(),
        ));
    }
    if stream.is_empty() {
        return Some(EventStoreError::InvalidAppend(
            "the stream name must not be empty".into(),
        ));
    }
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    ids.sort_unstable();
    ids.dedup();
    (ids.len() != events.len()).then(|| EventStoreError::InvalidAppend("event ids repeat within one append".into()))
}

/// Where an event id is stored already: its stream, version and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAt {
    pub stream: String,
    pub version: u64,
    pub position: u64,
}

/// Judges an append whose event ids were looked up (`found`, in the append's order): `None` if
/// none is stored; the first outcome again if exactly these events are stored, consecutively,
/// in `stream` (a retry); else the id that was reused elsewhere.
pub fn judge_stored(
    stream: &str,
    found: &[(Uuid, Option<StoredAt>)],
) -> Option<Result<AppendOutcome, EventStoreError>> {
    if found.iter().all(|(_, at)| at.is_none()) {
        return None;
    }
    let consistent = found
        .iter()
        .all(|(_, at)| matches!(at, Some(at) if at.stream == stream))
        && found.windows(2).all(|pair| match (&pair[0].1, &pair[1].1) {
            (Some(first), Some(second)) => second.version == first.version + 1,
            _ => false,
        });
    if !consistent {
        let reused = found
            .iter()
            .find(|(_, at)| at.is_some())
            .map_or(Uuid::nil(), |(id, _)| *id);
        return Some(Err(EventStoreError::EventIdReused { event_id: reused }));
    }
    let first = found.first()?.1.as_ref()?;
    let last = found.last()?.1.as_ref()?;
    Some(Ok(AppendOutcome {
        version: last.version,
        first_position: first.position,
        last_position: last.position,
        deduplicated: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lablet_application::ports::{IdSource, UuidV7Ids};

    fn at(stream: &str, version: u64, position: u64) -> Option<StoredAt> {
        Some(StoredAt {
            stream: stream.into(),
            version,
            position,
        })
    }

    #[test]
    fn a_retry_of_stored_events_gets_the_first_outcome() {
        let (a, b) = (UuidV7Ids.new_id(), UuidV7Ids.new_id());
        assert_eq!(judge_stored("s", &[(a, None), (b, None)]), None);
        assert_eq!(
            judge_stored("s", &[(a, at("s", 3, 10)), (b, at("s", 4, 12))]),
            Some(Ok(AppendOutcome {
                version: 4,
                first_position: 10,
                last_position: 12,
                deduplicated: true
            }))
        );
    }

    #[test]
    fn ids_stored_elsewhere_or_in_part_are_a_reuse() {
        let (a, b) = (UuidV7Ids.new_id(), UuidV7Ids.new_id());
        let reused = |result| matches!(result, Some(Err(EventStoreError::EventIdReused { .. })));
        assert!(reused(judge_stored("s", &[(a, at("other", 1, 1))])));
        assert!(reused(judge_stored("s", &[(a, at("s", 1, 1)), (b, None)])));
        assert!(reused(judge_stored("s", &[(a, None), (b, at("s", 2, 2))])));
        assert!(reused(judge_stored("s", &[(a, at("s", 1, 1)), (b, at("s", 3, 3))])));
    }
}
