//! Lablet definitions beyond their commands: the artifact sync that makes a version active.

mod sync;

pub use sync::{DefinitionSync, SyncPass, DEFAULT_SYNC_INTERVAL, DEFINITION_SYNC};
