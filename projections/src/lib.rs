//! Lablet's projections: projectors that turn events into read-model documents, and the
//! runner that feeds them from the log with a durable checkpoint.
//!
//! A projector is a pure function `(document, event) → document`; the runner owns everything
//! else: batching, loading documents, recording each operation in the document's history,
//! and committing documents and checkpoint together. A projection never skips an event and never
//! applies one twice.

pub mod history;
pub mod projector;
pub mod projectors;
pub mod rebuild;
pub mod runner;
pub mod standby;
pub mod testing;

pub use projector::{ProjectionError, Projector};
pub use projectors::standard_projectors;
pub use rebuild::{Finish, Rebuild, RebuildError, RebuildOutcome};
pub use runner::ProjectionRunner;
