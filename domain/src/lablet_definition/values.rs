//! The values of a definition version, each built valid or not at all: its semantic version,
//! the artifact's URI and SHA-256, the resources it needs and the ports it asks for.

use crate::values::{schema_of_inner, Bounded, Name};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// A semantic version `MAJOR.MINOR.PATCH`, with an optional pre-release label
/// (`2.1.0-rc.1`); a pre-release sorts before its release.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SemVer {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub pre: Option<String>,
}

impl SemVer {
    pub fn parse(text: &str) -> Result<SemVer, String> {
        let bad = || format!("{text:?} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0)");
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = numbers.as_slice() else {
            return Err(bad());
        };
        let number = |part: &str| -> Result<u32, String> {
            let leading_zero = part.len() > 1 && part.starts_with('0');
            if part.is_empty() || leading_zero || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let pre = match pre {
            None => None,
            Some(label)
                if !label.is_empty()
                    && label.len() <= 64
                    && label.split('.').all(|part| {
                        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    }) =>
            {
                Some(label.to_owned())
            }
            Some(_) => return Err(bad()),
        };
        Ok(SemVer {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
            pre,
        })
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

impl Serialize for SemVer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SemVer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SemVer::parse(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// Where a version's lab artifact (its CML topology YAML) is: `https://`, `http://`,
/// `file://` or `s3://`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ArtifactUri(String);

/// The schemes an artifact may be fetched from.
pub const ARTIFACT_SCHEMES: [&str; 4] = ["https://", "http://", "file://", "s3://"];

impl ArtifactUri {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.chars().count() > 2048 || value.chars().any(char::is_control) || value.contains(' ') {
            return Err("must be a URI of at most 2048 characters, without spaces".into());
        }
        let rest = ARTIFACT_SCHEMES
            .iter()
            .find_map(|scheme| value.strip_prefix(scheme))
            .ok_or_else(|| format!("must start with one of {}", ARTIFACT_SCHEMES.join(", ")))?;
        if rest.is_empty() || rest == "/" {
            return Err("names no artifact".into());
        }
        Ok(ArtifactUri(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ArtifactUri {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ArtifactUri::parse(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// A SHA-256 digest as 64 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.len() == 64 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Sha256Hex(value))
        } else {
            Err("must be a SHA-256 digest: 64 lowercase hexadecimal digits".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Sha256Hex::parse(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

schema_of_inner!(String, SemVer,);
schema_of_inner!(String, ArtifactUri,);
schema_of_inner!(String, Sha256Hex,);

/// What a running instance of a version needs from its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu_cores: u32,
    pub memory_gb: u32,
    pub storage_gb: u32,
    #[serde(default)]
    pub nested_virtualization: bool,
}

/// The transport of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A port an instance asks its worker for (`console`, `ssh` …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    pub name: Name<64>,
    pub protocol: Protocol,
}

/// How long one instance may run, in minutes.
pub type MaxDuration = Bounded<1, 480>;
/// Instances kept started ahead of demand.
pub type WarmPoolDepth = Bounded<0, 10>;
/// Nodes in a topology.
pub type NodeCount = Bounded<1, 1000>;

/// The default of `max_duration_minutes`.
pub const DEFAULT_MAX_DURATION: MaxDuration = MaxDuration::new_const(60);
