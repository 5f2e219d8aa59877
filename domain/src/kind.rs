//! The one list of aggregate kinds.
//!
//! Everything chosen by kind outside the domain (the read model that documents a kind, whether
//! its events are published, how an auditor folds its stream, which projector handles it) is an
//! exhaustive `match` on [`AggregateKind`], so adding a kind fails to compile until every one of
//! those places has decided what to do with it. No table keyed by a hand-written prefix string
//! may exist beside this one.

use std::fmt;
use uuid::Uuid;

/// A kind of aggregate, named on the wire by [`AggregateKind::name`]: its streams are
/// `<name>-<uuid>` and its event types `<name>.<what_happened>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateKind {
    LabRecord,
    LabletInstance,
    WorkOrder,
    Worker,
    InboxMessage,
    LabletDefinition,
    WorkerTemplate,
}

impl AggregateKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AggregateKind; 7] = [
        AggregateKind::LabRecord,
        AggregateKind::LabletInstance,
        AggregateKind::WorkOrder,
        AggregateKind::Worker,
        AggregateKind::InboxMessage,
        AggregateKind::LabletDefinition,
        AggregateKind::WorkerTemplate,
    ];

    /// The snake_case name that prefixes the kind's streams and event types. Stored data
    /// depends on it: it never changes for an existing kind.
    pub const fn name(self) -> &'static str {
        match self {
            AggregateKind::LabRecord => "lab_record",
            AggregateKind::LabletInstance => "lablet_instance",
            AggregateKind::WorkOrder => "work_order",
            AggregateKind::Worker => "cml_worker",
            AggregateKind::InboxMessage => "inbox_message",
            AggregateKind::LabletDefinition => "lablet_definition",
            AggregateKind::WorkerTemplate => "worker_template",
        }
    }

    /// The stream that holds the aggregate of this kind with this id.
    pub fn stream(self, id: Uuid) -> String {
        format!("{}-{id}", self.name())
    }

    /// The kind whose streams look like `stream` (`<name>-…`), if any.
    pub fn of_stream(stream: &str) -> Option<Self> {
        stream.split_once('-').and_then(|(name, _)| Self::named(name))
    }

    /// The kind whose events have this type (`<name>.…`), if any.
    pub fn of_event_type(event_type: &str) -> Option<Self> {
        event_type.split_once('.').and_then(|(name, _)| Self::named(name))
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_found_back_from_streams_and_event_types() {
        for kind in AggregateKind::ALL {
            let stream = kind.stream(Uuid::from_u128(7));
            assert_eq!(AggregateKind::of_stream(&stream), Some(kind));
            assert_eq!(AggregateKind::of_event_type(&format!("{kind}.happened")), Some(kind));
            assert_eq!(AggregateKind::ALL.iter().filter(|k| k.name() == kind.name()).count(), 1);
        }
        assert_eq!(AggregateKind::of_stream("scaling-eu-west-1"), None);
        assert_eq!(AggregateKind::of_stream("lab_record"), None);
        assert_eq!(AggregateKind::of_event_type("lab_record"), None);
    }
}
