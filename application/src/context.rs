//! Who asked, and as part of what: the metadata that travels with every command and query.

use crate::ports::{IdSource, LeaseFence, UuidV7Ids};

/// The caller and the trace of one request, copied into the envelope of every event it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Ties together everything one request caused, across services.
    pub correlation_id: String,
    /// The message (request or event) that directly caused this one, if known.
    pub causation_id: Option<String>,
    /// The subject or key id acting; `system` for Lablet's own jobs.
    pub actor: String,
    /// W3C trace context of the caller, if any.
    pub traceparent: Option<String>,
    /// When set, the caller may act only on lablet instances owned by this subject (a caller
    /// with the `user` role and no broader one).
    pub owner_scope: Option<String>,
    /// The lease a singleton job acts under: its commands are refused once another replica
    /// has taken the role.
    pub fence: Option<LeaseFence>,
}

impl RequestContext {
    /// A context for work Lablet starts by itself.
    pub fn system() -> Self {
        RequestContext {
            correlation_id: UuidV7Ids.new_id().to_string(),
            causation_id: None,
            actor: "system".into(),
            traceparent: None,
            owner_scope: None,
            fence: None,
        }
    }

    /// A context for a singleton job running under `fence`.
    pub fn system_under(fence: &LeaseFence) -> Self {
        RequestContext {
            fence: Some(fence.clone()),
            ..RequestContext::system()
        }
    }
}
