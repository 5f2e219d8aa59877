//! Ids as a port: every id Lablet makes (aggregates, events, correlation ids, keys) comes from
//! an [`IdSource`], so tests can make them predictable.
//!
//! This is the only module that may call `Uuid::now_v7()`; clippy's `disallowed_methods`
//! refuses it everywhere else.

use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub trait IdSource: Send + Sync + 'static {
    /// A new id, never handed out before.
    fn new_id(&self) -> Uuid;

    /// A number in `[0, 1)` for retry jitter: the low 32 bits of a fresh id, which are random
    /// in a v7 id.
    fn random_unit(&self) -> f64 {
        let bits = (self.new_id().as_u128() & 0xFFFF_FFFF) as u32;
        f64::from(bits) / (f64::from(u32::MAX) + 1.0)
    }
}

/// UUID version 7: time-ordered, random in the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdSource for UuidV7Ids {
    #[allow(clippy::disallowed_methods)] // the one maker of v7 ids
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Ids counted up from 1 (as version 7 UUIDs with a zero time), for tests that name what they
/// expect.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl IdSource for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        uuid::Builder::from_unix_timestamp_millis(0, &u128::from(n).to_be_bytes()[6..16].try_into().unwrap_or([0; 10]))
            .into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_count_up_and_v7_ids_differ() {
        let ids = SequentialIds::default();
        let (a, b) = (ids.new_id(), ids.new_id());
        assert!(a < b);
        assert_eq!(a.get_version_num(), 7);
        assert_ne!(UuidV7Ids.new_id(), UuidV7Ids.new_id());
    }
}
