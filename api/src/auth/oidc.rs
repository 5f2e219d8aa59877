//! Signing keys of an OpenID Connect issuer: discovered from
//! `<issuer>/.well-known/openid-configuration`, fetched from its `jwks_uri`, cached by `kid`
//! and fetched again when a token names a key the cache does not hold (the issuer rotated
//! keys). Refetches on unknown keys happen at most every `refetch_min` (ten seconds by
//! default), so a stream of forged `kid`s cannot make Lablet hammer the issuer.

use super::AuthFailure;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

type KeyMap = HashMap<String, (Algorithm, DecodingKey)>;

pub struct OidcKeys {
    issuer: String,
    refetch_min: Duration,
    client: reqwest::Client,
    keys: RwLock<KeyMap>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// The algorithm a JWK is for: its `alg` if it says, else RS256 for RSA and ES256 for P-256.
/// Keys for encryption or other algorithms are not signing keys Lablet accepts.
fn signing_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Some(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Some(by_type),
        Some(_) => None,
    }
}

/// The signing keys of a JWKS document; keys Lablet cannot use are skipped one by one.
pub fn signing_keys(jwks: &Value) -> KeyMap {
    let listed = jwks.get("keys").and_then(Value::as_array).cloned().unwrap_or_default();
    listed
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let algorithm = signing_algorithm(&jwk)?;
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, (algorithm, key)))
        })
        .collect()
}

impl OidcKeys {
    pub fn new(issuer: String, refetch_min: Duration) -> Self {
        OidcKeys {
            issuer,
            refetch_min,
            client: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    fn cached(&self, kid: &str, algorithm: Algorithm) -> Option<Result<DecodingKey, AuthFailure>> {
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.get(kid).map(|(expected, key)| {
            if *expected == algorithm {
                Ok(key.clone())
            } else {
                Err(AuthFailure::InvalidToken("the token signature is not valid"))
            }
        })
    }

    /// The key `kid` for `algorithm`, fetching the issuer's keys when it is not cached.
    pub async fn key(&self, kid: &str, algorithm: Algorithm) -> Result<DecodingKey, AuthFailure> {
        if let Some(found) = self.cached(kid, algorithm) {
            return found;
        }
        let unknown = AuthFailure::InvalidToken("the token's signing key is unknown");
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have fetched the keys while this one waited.
        if let Some(found) = self.cached(kid, algorithm) {
            return found;
        }
        if last_fetch.is_some_and(|at| at.elapsed() < self.refetch_min) {
            return Err(unknown);
        }
        *last_fetch = Some(Instant::now());
        let fetched = self.fetch().await.map_err(|err| {
            tracing::warn!(issuer = %self.issuer, error = %err, "cannot fetch the issuer's signing keys");
            AuthFailure::KeysUnavailable
        })?;
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fetched;
        self.cached(kid, algorithm).unwrap_or(Err(unknown))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let response = self.client.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        response.json().await.map_err(|e| format!("{url}: {e}"))
    }

    async fn fetch(&self) -> Result<KeyMap, String> {
        let discovery = self
            .get_json(&format!("{}/.well-known/openid-configuration", self.issuer))
            .await?;
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?;
        Ok(signing_keys(&self.get_json(jwks_uri).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_usable_signing_keys_are_kept() {
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256",
             "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
             "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
        ]});
        let keys = signing_keys(&jwks);
        let mut kids: Vec<(&str, Algorithm)> = keys.iter().map(|(k, (a, _))| (k.as_str(), *a)).collect();
        kids.sort_by_key(|(k, _)| *k);
        assert_eq!(kids, vec![("ec", Algorithm::ES256), ("rsa", Algorithm::RS256)]);
    }
}
