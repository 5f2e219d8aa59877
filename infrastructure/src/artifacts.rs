//! Reading lablet definition artifacts with `object_store`: `file://` from the local disk,
//! `http://` and `https://` with a GET, `s3://bucket/key` from S3 (or any S3-compatible
//! endpoint) configured by the usual `AWS_*` variables (`AWS_ENDPOINT`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`). The bytes are hashed
//! (SHA-256) and read as a CML topology, whose `nodes` list gives the node count.

use async_trait::async_trait;
use lablet_application::ports::{Artifact, ArtifactError, ArtifactFacts, ArtifactSource, MAX_ARTIFACT_BYTES};
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore};
use reqwest::Url;
use sha2::{Digest, Sha256};

/// The artifact source Lablet runs with.
#[derive(Debug, Default, Clone, Copy)]
pub struct ObjectStoreArtifacts;

fn unreadable(err: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Unreadable(without_timings(&err.to_string()))
}

/// Why an object could not be read, in words that stay the same from one try to the next
/// (a failure recorded once is not recorded again while its reason is unchanged).
fn unreadable_object(err: object_store::Error) -> ArtifactError {
    match err {
        object_store::Error::NotFound { path, .. } => unreadable(format!("nothing is at {path}")),
        object_store::Error::PermissionDenied { path, .. } | object_store::Error::Unauthenticated { path, .. } => {
            unreadable(format!("access to {path} was refused"))
        }
        other => unreadable(other),
    }
}

/// `text` without the durations a client puts in its messages (`… in 635.086µs …`).
fn without_timings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" in ") {
        let after = &rest[at + 4..];
        let digits = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(after.len());
        let unit = ["ns", "µs", "us", "ms", "s"]
            .iter()
            .find(|unit| digits > 0 && after[digits..].starts_with(**unit));
        out.push_str(&rest[..at]);
        match unit {
            Some(unit) => rest = &after[digits + unit.len()..],
            None => {
                out.push_str(" in ");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The store that holds `uri` and the object's path in it.
fn locate(uri: &str) -> Result<(Box<dyn ObjectStore>, Path), ArtifactError> {
    let url = Url::parse(uri).map_err(|e| unreadable(format!("{uri} is not a URL: {e}")))?;
    let path = Path::from_url_path(url.path()).map_err(unreadable)?;
    let store: Box<dyn ObjectStore> = match url.scheme() {
        "file" => Box::new(LocalFileSystem::new()),
        "http" | "https" => {
            let origin = url.origin().ascii_serialization();
            let options = ClientOptions::new().with_allow_http(url.scheme() == "http");
            let store = HttpBuilder::new()
                .with_url(origin)
                .with_client_options(options)
                .build()
                .map_err(unreadable)?;
            Box::new(store)
        }
        "s3" => {
            let bucket = url
                .host_str()
                .filter(|bucket| !bucket.is_empty())
                .ok_or_else(|| unreadable(format!("{uri} names no bucket")))?;
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(unreadable)?;
            Box::new(store)
        }
        other => return Err(unreadable(format!("the scheme {other} is not supported"))),
    };
    Ok((store, path))
}

/// A CML topology read from its YAML, and its node count: the length of its top-level `nodes`
/// list.
pub fn read_topology(bytes: &[u8]) -> Result<(serde_json::Value, u32), ArtifactError> {
    let topology: serde_json::Value =
        yaml_serde::from_slice(bytes).map_err(|e| ArtifactError::NotATopology(e.to_string()))?;
    let nodes = topology
        .get("nodes")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| ArtifactError::NotATopology("it has no list of nodes".into()))?;
    let count = u32::try_from(nodes.len()).map_err(|_| ArtifactError::NotATopology("too many nodes".into()))?;
    Ok((topology, count))
}

/// The SHA-256 of `bytes` in lowercase hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[async_trait]
impl ArtifactSource for ObjectStoreArtifacts {
    async fn fetch(&self, uri: &str) -> Result<Artifact, ArtifactError> {
        let (store, path) = locate(uri)?;
        let object = store.get(&path).await.map_err(unreadable_object)?;
        if object.meta.size > MAX_ARTIFACT_BYTES {
            return Err(unreadable(format!(
                "it is {} bytes, more than the {MAX_ARTIFACT_BYTES} an artifact may be",
                object.meta.size
            )));
        }
        let bytes = object.bytes().await.map_err(unreadable_object)?;
        let (topology, node_count) = read_topology(&bytes)?;
        Ok(Artifact {
            topology,
            facts: ArtifactFacts {
                sha256: sha256_hex(&bytes),
                node_count,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topology_counts_its_nodes_and_anything_else_is_refused() {
        let topology = b"lab:\n  title: OSPF\nnodes:\n  - id: n0\n  - id: n1\n  - id: n2\nlinks: []\n";
        let (read, count) = read_topology(topology).unwrap();
        assert_eq!((count, read["lab"]["title"].as_str()), (3, Some("OSPF")));
        assert!(matches!(
            read_topology(b"lab: {}\n"),
            Err(ArtifactError::NotATopology(_))
        ));
        assert!(matches!(
            read_topology(b"nodes: [\n"),
            Err(ArtifactError::NotATopology(_))
        ));
        assert_eq!(
            sha256_hex(b"test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn durations_are_left_out_of_reasons() {
        assert_eq!(
            without_timings("Error performing GET http://x/y in 635.086µs - 404 in the end"),
            "Error performing GET http://x/y - 404 in the end"
        );
        assert_eq!(without_timings("took 2s in 12ms"), "took 2s");
    }

    #[tokio::test]
    async fn a_local_file_is_read_and_a_missing_one_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.yaml");
        std::fs::write(&file, "nodes:\n  - id: a\n").unwrap();
        let uri = format!("file://{}", file.display());
        let facts = ObjectStoreArtifacts.inspect(&uri).await.unwrap();
        assert_eq!(facts.node_count, 1);
        assert_eq!(facts.sha256, sha256_hex(b"nodes:\n  - id: a\n"));
        let missing = format!("file://{}", dir.path().join("nope.yaml").display());
        assert!(matches!(
            ObjectStoreArtifacts.inspect(&missing).await,
            Err(ArtifactError::Unreadable(_))
        ));
    }
}
