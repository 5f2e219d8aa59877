//! Lablet's domain: aggregates, their events and state machines, and the rules they enforce.
//!
//! Everything here is pure: no I/O, no async, no clock and no randomness. Time, ids and jitter
//! arrive inside commands, so `decide` is a function of (state, command) alone and replaying the
//! same events always rebuilds the same state. This crate must never learn which database it
//! lives in.

mod event_enum;
pub mod inbox_message;
pub mod kernel;
pub mod kind;
pub mod lab_record;
pub mod lablet_instance;
#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod testing;
pub mod text;
pub mod upcast;
pub mod work_order;
pub mod worker;

pub use kernel::{decode_event, encode_event, Aggregate, DomainError, DomainEvent, FieldChange};
pub use kind::AggregateKind;
