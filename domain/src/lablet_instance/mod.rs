//! LabletInstance: a time-boxed reservation of a lablet definition, stream
//! `lablet_instance-<uuid>`.
//!
//! The state machine is the whole story of an instance, from `pending` to the final
//! `terminated`; every move is an event named after what happened.

mod aggregate;
mod commands;
mod events;
mod pipeline;
mod state;

pub use aggregate::{instance_id_for_reservation, LabletInstance};
pub use commands::{CheckedScore, InstanceRequest, LabletInstanceCommand};
pub use events::{GradingScore, LabletInstanceEvent, PlacementSummary, RejectedWorker, StateChange, StepOutcome};
pub use pipeline::{StepReport, LAB_DELETE_STEP};
pub use state::InstanceState;
