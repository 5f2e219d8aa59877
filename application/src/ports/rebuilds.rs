//! The rebuild port: a projection is replayed into a staging area beside the live read models
//! while the live projection keeps serving, then swapped in.
//!
//! A staging area is a read-model store of its own, shaped like the live one (a scratch file
//! next to the SQLite read models, a schema of the PostgreSQL database, prefixed collections of
//! the MongoDB database). The swap replaces the live documents, their histories and the
//! checkpoint of one projection with the staged ones and moves the projection to its next
//! generation, so that a runner that started before the swap can never commit over it: it is
//! refused with `Superseded` and follows the log from the swapped-in checkpoint.

use super::read_models::{ReadModelError, ReadModelStore};
use async_trait::async_trait;
use std::sync::Arc;

/// A staging area for one rebuild.
#[derive(Clone)]
pub struct Staging {
    /// What the adapter knows the area by (a file path, a schema, a collection prefix).
    pub name: String,
    /// The area's read models, where the rebuild's runner commits.
    pub store: Arc<dyn ReadModelStore>,
}

/// What a swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapOutcome {
    /// The rebuilt read model is live at `position`, as generation `generation`.
    Swapped {
        position: u64,
        generation: u64,
        documents: u64,
    },
    /// Nothing changed: the staged checkpoint is behind the live one; catch up and try again.
    Behind { live: u64, rebuilt: u64 },
    /// Nothing changed: the staging area holds no checkpoint for the projection.
    NothingRebuilt,
}

#[async_trait]
pub trait ReadModelRebuilds: Send + Sync + 'static {
    /// An empty staging area shaped like the live read models of `collection`.
    async fn stage(&self, collection: &'static str) -> Result<Staging, ReadModelError>;

    /// Replaces the live projection `collection` (its documents, their histories and its
    /// checkpoint) with the staged one and bumps its generation; readers see the old read
    /// model or the new one, never a mix. Changes nothing while the staged checkpoint is
    /// behind the live one, so that readers never see a read model go back.
    async fn swap_in(&self, staging: &Staging, collection: &'static str) -> Result<SwapOutcome, ReadModelError>;

    /// Deletes the staging area and everything in it.
    async fn discard(&self, staging: Staging) -> Result<(), ReadModelError>;
}
