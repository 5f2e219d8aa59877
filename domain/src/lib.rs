//! Lablet's domain: aggregates, their events and state machines, and the rules they enforce.
//!
//! Everything here is pure: no I/O, no async, no clock and no randomness. Time, the actor and
//! jitter arrive in a [`DecisionContext`] beside each command, so `decide` is a function of
//! (state, command, context) alone and replaying the same events always rebuilds the same
//! state. Input is checked once, where it enters: commands hold [`values`] that cannot be
//! built invalid. This crate must never learn which database it lives in.

mod event_enum;
pub mod inbox_message;
pub mod kernel;
pub mod kind;
pub mod lab_record;
pub mod lablet_definition;
pub mod lablet_instance;
pub mod placement;
#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod testing;
pub mod text;
pub mod upcast;
pub mod values;
pub mod work_order;
pub mod worker;
pub mod worker_template;

pub use kernel::{
    decode_event, encode_event, Aggregate, Command, DecisionContext, DomainError, DomainEvent, FieldChange,
};
pub use kind::AggregateKind;
