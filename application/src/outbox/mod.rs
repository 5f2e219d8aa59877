//! The outbox: Lablet's own events, delivered to integrators as CloudEvents.
//!
//! The event log is the outbox, so nothing is written twice and nothing committed can be
//! missed. A [`relay::OutboxRelay`] per sink follows the log with its own checkpoint and hands
//! every public event to a [`relay::CloudEventSink`] (HTTP, NATS JetStream: adapters in
//! `lablet-infrastructure`): at least once, in order per subject (aggregate id), with
//! exponential backoff and jitter. An event that keeps failing is parked with the events of its
//! subject behind it, while other subjects keep flowing; operators see what is parked and redrive
//! it ([`handlers`]).

pub mod handlers;
pub mod relay;

pub use handlers::{GetOutbox, OutboxHandlers, OutboxOverview, RedriveParked};
pub use relay::{is_public, CloudEventSink, DeliveryError, OutboxRelay, RelaySettings};
