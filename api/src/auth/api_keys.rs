//! API keys for machine callers: `lbk_<id>_<secret>`, sent as `X-API-Key`.
//!
//! The id (a UUIDv7 in hex) is the key's public name and the actor of its commands
//! (`apikey:<id>`); the secret is 32 random bytes shown once. The store keeps the secret's
//! SHA-256 only: the secret is random and long, so a fast hash is as safe as a slow one and
//! costs a request nothing.

use super::{AuthFailure, Principal, Role};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use lablet_application::ports::{ApiKeyRecord, ApiKeyStore, ApiKeyStoreError};
use lablet_application::ports::{IdSource, UuidV7Ids};
use ring::rand::SecureRandom;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "x-api-key";
const PREFIX: &str = "lbk_";
const ID_LEN: usize = 32;

/// A new key: its record, and the key itself (shown once, never stored).
pub struct MintedKey {
    pub record: ApiKeyRecord,
    pub key: String,
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes a key granting `roles`, recorded as made by `created_by`.
pub fn mint(name: &str, roles: &[Role], created_by: &str, now: DateTime<Utc>) -> Result<MintedKey, ApiKeyStoreError> {
    let mut secret = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| ApiKeyStoreError::Unavailable("the system random source failed".into()))?;
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let id = UuidV7Ids.new_id().simple().to_string();
    let key = format!("{PREFIX}{id}_{secret}");
    let record = ApiKeyRecord {
        id,
        name: name.to_owned(),
        roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
        secret_sha256: sha256_hex(&secret),
        created_at: now,
        created_by: created_by.to_owned(),
        revoked_at: None,
    };
    Ok(MintedKey { record, key })
}

/// The id and secret of a well-formed key.
fn split(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = (rest.get(..ID_LEN)?, rest.get(ID_LEN..)?.strip_prefix('_')?);
    (id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty()).then_some((id, secret))
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The caller a key stands for, if it exists, matches and is not revoked.
pub async fn verify(store: &dyn ApiKeyStore, key: &str) -> Result<Principal, AuthFailure> {
    let refused = AuthFailure::InvalidToken("the API key is not valid");
    let (id, secret) = split(key).ok_or(AuthFailure::InvalidToken("the API key is malformed"))?;
    let record = match store.find(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(refused),
        Err(err) => {
            tracing::error!(error = %err, "cannot look up an API key");
            return Err(AuthFailure::KeysUnavailable);
        }
    };
    if !same(&record.secret_sha256, &sha256_hex(secret)) {
        return Err(refused);
    }
    if record.revoked_at.is_some() {
        return Err(AuthFailure::InvalidToken("the API key was revoked"));
    }
    Ok(Principal::api_key(
        &record.id,
        record.roles.iter().filter_map(|name| Role::parse(name)).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lablet_application::ports::{Clock, SystemClock};

    #[test]
    fn a_minted_key_splits_into_its_id_and_a_secret_matching_the_hash() {
        let minted = mint("ci", &[Role::Integrator], "admin", SystemClock.now()).unwrap();
        let (id, secret) = split(&minted.key).unwrap();
        assert_eq!(id, minted.record.id);
        assert_eq!(sha256_hex(secret), minted.record.secret_sha256);
        assert!(!minted.record.secret_sha256.contains(secret));
        assert_eq!(minted.record.roles, vec!["integrator"]);
        let other = mint("ci", &[Role::Integrator], "admin", SystemClock.now()).unwrap();
        assert_ne!(other.key, minted.key);
    }

    #[test]
    fn malformed_keys_do_not_split() {
        for key in [
            "",
            "lbk_",
            "abc",
            "lbk_0123_secret",
            &format!("lbk_{}", "z".repeat(32) + "_s"),
        ] {
            assert_eq!(split(key), None, "{key}");
        }
        assert_eq!(
            split(&format!("lbk_{}_s", "a".repeat(32))),
            Some(("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "s"))
        );
    }
}
