//! The artifact port: reads a lablet definition's lab artifact (a CML topology YAML) where its
//! URI says, and answers its topology with the two facts a version is checked against: the
//! SHA-256 of its bytes and the number of nodes its topology declares.

use async_trait::async_trait;

/// The largest artifact read: a topology is text, and a bigger file is refused unread.
pub const MAX_ARTIFACT_BYTES: u64 = 16 * 1024 * 1024;

/// What an artifact is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFacts {
    /// Lowercase hexadecimal.
    pub sha256: String,
    pub node_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// It could not be read (no such object, refused, unreachable, too big).
    #[error("the artifact could not be read: {0}")]
    Unreadable(String),
    /// It was read but is not a CML topology with a list of nodes.
    #[error("the artifact is not a CML topology: {0}")]
    NotATopology(String),
}

/// An artifact read: its topology (the YAML as a JSON value, as CML imports it) and its facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub topology: serde_json::Value,
    pub facts: ArtifactFacts,
}

#[async_trait]
pub trait ArtifactSource: Send + Sync + 'static {
    /// Reads the artifact at `uri` (`https://`, `http://`, `file://` or `s3://`).
    async fn fetch(&self, uri: &str) -> Result<Artifact, ArtifactError>;

    /// The facts of the artifact at `uri`.
    async fn inspect(&self, uri: &str) -> Result<ArtifactFacts, ArtifactError> {
        Ok(self.fetch(uri).await?.facts)
    }
}
