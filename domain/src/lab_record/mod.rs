//! LabRecord: a lab seen on a CML worker, stream `lab_record-<uuid>`.
//!
//! The id is deterministic from `(worker_id, lab_id)` (UUIDv5), so discovering the same lab twice
//! addresses the same aggregate. Observing a lab records only what changed: a discovery, changed
//! details, a changed state, or nothing at all.

mod aggregate;
mod commands;
mod events;

pub use aggregate::{lab_record_id, LabRecord};
pub use commands::{LabObservation, LabRecordCommand};
pub use events::{LabDetails, LabRecordEvent, LabState, RemovalReason};
