//! LabletDefinition: a versioned lab template, stream `lablet_definition-<uuid>` (the UUIDv5 of
//! its name, so a name is one definition).
//!
//! Each version holds what it runs (the artifact's URI and SHA-256, the node count), what it
//! needs (resources, licenses, ports) and its limits. A version is added `pending_sync`, becomes
//! `active` only once its artifact was fetched and matched (which deprecates the version that
//! was active), and is immutable from then on: a change is the next version. Deprecated
//! versions take no new instances while running ones go on.

mod aggregate;
mod commands;
mod events;
#[cfg(test)]
mod tests;
mod values;

pub use aggregate::{definition_id, LabletDefinition, VersionState, VersionStatus};
pub use commands::{LabletDefinitionCommand, SyncOutcome, VersionSpec};
pub use events::{LabletDefinitionEvent, VersionContent};
pub use values::{
    ArtifactUri, MaxDuration, NodeCount, PortSpec, Protocol, Resources, SemVer, Sha256Hex, WarmPoolDepth,
    ARTIFACT_SCHEMES, DEFAULT_MAX_DURATION,
};
