//! The ports: traits the application needs from the outside world, implemented by adapters in
//! `lablet-infrastructure` and checked by one contract suite per port.

pub mod api_keys;
pub mod artifacts;
pub mod clock;
pub mod cml;
pub mod credentials;
pub mod event_store;
pub mod ids;
pub mod leases;
pub mod outbox;
pub mod read_models;
pub mod rebuilds;

pub use api_keys::{ApiKeyRecord, ApiKeyStore, ApiKeyStoreError};
pub use artifacts::{Artifact, ArtifactError, ArtifactFacts, ArtifactSource, MAX_ARTIFACT_BYTES};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cml::{CmlClient, CmlConnector, CmlError, CmlTarget};
pub use credentials::{CmlCredentials, CredentialVault, VaultError};
pub use event_store::{AppendOutcome, EventStore, EventStoreError, ExpectedVersion, LAG_COUNT_LIMIT};
pub use ids::{IdSource, SequentialIds, UuidV7Ids};
pub use leases::{Lease, LeaseError, LeaseFence, LeaseStore, ReplicaSeen};
pub use outbox::{OutboxStore, OutboxStoreError, ParkedEvent, RelayMark, SinkProgress};
pub use read_models::{
    CollectionSpec, CommitFence, DocumentWrite, HistoryEntry, HistoryRecord, ListPage, ListQuery, ReadModelError,
    ReadModelStore, StoredDocument,
};
pub use rebuilds::{ReadModelRebuilds, Staging, SwapOutcome};
