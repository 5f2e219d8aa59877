//! Verifying credentials: bearer JWTs (local HS256 or an OIDC issuer's RS256/ES256) and API
//! keys, and issuing local tokens.

use super::api_keys;
use super::local_key::LocalKeys;
use super::oidc::OidcKeys;
use super::{AuthFailure, Principal, Role};
use axum::http::{header, HeaderMap};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use lablet_application::ports::ApiKeyStore;
use lablet_application::ports::{Clock, SystemClock};
use lablet_infrastructure::auth_settings::{AuthSettings, TokenIssuer, LOCAL_ISSUER};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Where signing keys come from.
enum TokenKeys {
    Local(LocalKeys),
    Oidc(OidcKeys),
}

/// Turns the credentials of a request into a [`Principal`].
pub struct Authenticator {
    keys: TokenKeys,
    issuer: String,
    audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    leeway_seconds: u64,
    api_keys: Arc<dyn ApiKeyStore>,
}

/// The claims Lablet reads; `exp`, `iss` and `aud` are checked by the verifier.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Option<Value>,
    #[serde(default)]
    realm_access: Option<Value>,
}

/// The roles Lablet knows among a token's `realm_access.roles` (Keycloak) and `roles`.
fn roles_of(claims: &Claims) -> BTreeSet<Role> {
    let listed = |value: Option<&Value>| -> Vec<Role> {
        value
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).filter_map(Role::parse).collect())
            .unwrap_or_default()
    };
    let mut roles: BTreeSet<Role> = listed(claims.roles.as_ref()).into_iter().collect();
    roles.extend(listed(claims.realm_access.as_ref().and_then(|r| r.get("roles"))));
    roles
}

/// Why a token was refused, in words safe to send back.
fn refusal(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidAudience => "the token is not meant for this service",
        ErrorKind::InvalidIssuer => "the token was issued by another issuer",
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => "the token signature is not valid",
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (sub, exp, iss or aud)",
        _ => "the token is malformed",
    }
}

/// A local token to issue.
pub struct TokenRequest {
    pub subject: String,
    pub roles: Vec<Role>,
    pub ttl: Duration,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    roles: Vec<&'static str>,
    iat: i64,
    exp: i64,
}

impl Authenticator {
    /// The authenticator `settings` describe; the local key is created on first start.
    pub fn new(settings: &AuthSettings, api_keys: Arc<dyn ApiKeyStore>) -> std::io::Result<Authenticator> {
        let (keys, issuer) = match &settings.issuer {
            TokenIssuer::Local { key_file } => (TokenKeys::Local(LocalKeys::load_or_create(key_file)?), LOCAL_ISSUER),
            TokenIssuer::Oidc { issuer, refetch_min } => (
                TokenKeys::Oidc(OidcKeys::new(issuer.clone(), *refetch_min)),
                issuer.as_str(),
            ),
        };
        Ok(Authenticator {
            keys,
            issuer: issuer.to_owned(),
            audience: settings.audience.clone(),
            leeway_seconds: settings.clock_leeway.as_secs(),
            api_keys,
        })
    }

    /// The caller of a request: an `X-API-Key`, else an `Authorization: Bearer` token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthFailure> {
        if let Some(key) = headers.get(api_keys::HEADER) {
            let key = key
                .to_str()
                .map_err(|_| AuthFailure::InvalidToken("the API key is malformed"))?;
            return api_keys::verify(self.api_keys.as_ref(), key.trim()).await;
        }
        let Some(authorization) = headers.get(header::AUTHORIZATION) else {
            return Err(AuthFailure::Missing);
        };
        let token = authorization
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(AuthFailure::InvalidToken(
                "use the Bearer scheme: Authorization: Bearer <token>",
            ))?;
        self.verify_token(token).await
    }

    async fn verify_token(&self, token: &str) -> Result<Principal, AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthFailure::InvalidToken(refusal(e.kind())))?;
        let unsigned = AuthFailure::InvalidToken("the token signature is not valid");
        let key: DecodingKey = match &self.keys {
            TokenKeys::Local(keys) => {
                if header.alg != Algorithm::HS256 {
                    return Err(unsigned);
                }
                keys.decoding_key(header.kid.as_deref().unwrap_or_default())
                    .ok_or(unsigned)?
            }
            TokenKeys::Oidc(keys) => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(unsigned);
                }
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or(AuthFailure::InvalidToken("the token names no signing key (kid)"))?;
                keys.key(kid, header.alg).await?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthFailure::InvalidToken(refusal(e.kind())))?
            .claims;
        if claims.sub.trim().is_empty() {
            return Err(AuthFailure::InvalidToken("the token's subject is empty"));
        }
        let roles = roles_of(&claims);
        Ok(Principal::user(claims.sub, roles))
    }
}

/// A token signed with the data directory's local key (made if there is none yet).
pub fn issue_local(settings: &AuthSettings, request: &TokenRequest) -> Result<String, String> {
    let TokenIssuer::Local { key_file } = &settings.issuer else {
        return Err("LABLET_AUTH_ISSUER is set: tokens come from that identity provider, not from lablet".into());
    };
    let keys = LocalKeys::load_or_create(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let (kid, key) = keys.signing_key();
    let now = SystemClock.now().timestamp();
    let claims = IssuedClaims {
        iss: LOCAL_ISSUER,
        aud: &settings.audience,
        sub: &request.subject,
        roles: request.roles.iter().map(|role| role.as_str()).collect(),
        iat: now,
        exp: now + request.ttl.as_secs() as i64,
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: Value) -> Claims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn roles_come_from_either_claim_and_unknown_ones_are_dropped() {
        let keycloak = claims(serde_json::json!({
            "sub": "a",
            "realm_access": {"roles": ["offline_access", "manager", "uma_authorization"]}
        }));
        assert_eq!(roles_of(&keycloak), BTreeSet::from([Role::Manager]));
        let flat = claims(serde_json::json!({"sub": "a", "roles": ["auditor", "user", 7]}));
        assert_eq!(roles_of(&flat), BTreeSet::from([Role::Auditor, Role::User]));
        let both = claims(serde_json::json!({
            "sub": "a", "roles": ["admin"], "realm_access": {"roles": ["integrator"]}
        }));
        assert_eq!(roles_of(&both), BTreeSet::from([Role::Admin, Role::Integrator]));
        let odd = claims(serde_json::json!({"sub": "a", "roles": "admin"}));
        assert!(
            roles_of(&odd).is_empty(),
            "a role claim that is not a list grants nothing"
        );
    }
}
