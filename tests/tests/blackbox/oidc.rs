//! Tokens from an OpenID Connect issuer: ES256 keys found through discovery and the JWKS,
//! roles from `realm_access.roles`, and a key rotation picked up on an unknown `kid`. The
//! issuer is a small HTTP server of the test's own.

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lablet_infrastructure::auth_settings::TokenIssuer;
use lablet_tests::server::client_with_token;
use lablet_tests::TestServer;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A signing key of the issuer and its public JWK.
struct IssuerKey {
    kid: String,
    algorithm: jsonwebtoken::Algorithm,
    signing: jsonwebtoken::EncodingKey,
    jwk: Value,
}

/// A fresh P-256 key (ES256).
fn new_key(kid: &str) -> IssuerKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    IssuerKey {
        kid: kid.into(),
        algorithm: jsonwebtoken::Algorithm::ES256,
        signing: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk,
    }
}

/// The RSA test key of `tests/fixtures` (RS256): `ring` cannot generate RSA keys, so it is a
/// fixture, made with `openssl genrsa -traditional 2048` for these tests only.
fn rsa_fixture_key(kid: &str) -> IssuerKey {
    let pem = include_str!("../../fixtures/oidc-rs256-test-key.pem");
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let pkcs1 = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    let pair = ring::rsa::KeyPair::from_der(&pkcs1).unwrap();
    let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
    let jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(&public.n),
        "e": URL_SAFE_NO_PAD.encode(&public.e),
    });
    IssuerKey {
        kid: kid.into(),
        algorithm: jsonwebtoken::Algorithm::RS256,
        signing: jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1),
        jwk,
    }
}

fn sign(key: &IssuerKey, issuer: &str, claims: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = claims;
    claims["iss"] = json!(issuer);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 300);
    let mut header = jsonwebtoken::Header::new(key.algorithm);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.signing).unwrap()
}

/// Serves discovery and a JWKS holding whatever keys `published` holds at the time.
async fn start_issuer(published: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/realms/labs", listener.local_addr().unwrap());
    let jwks_uri = format!("{issuer}/protocol/openid-connect/certs");
    let discovery = json!({"issuer": issuer, "jwks_uri": jwks_uri});
    let app = Router::new()
        .route(
            "/realms/labs/.well-known/openid-configuration",
            get(move || async move { Json(discovery) }),
        )
        .route(
            "/realms/labs/protocol/openid-connect/certs",
            get(move || async move { Json(json!({"keys": published.lock().unwrap().clone()})) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_the_issuer_are_verified_with_its_keys_and_a_rotation_is_followed() {
    let first = new_key("key-1");
    let published = Arc::new(Mutex::new(vec![first.jwk.clone()]));
    let issuer = start_issuer(published.clone()).await;
    let server = TestServer::start_with(|s| {
        s.auth.issuer = TokenIssuer::Oidc {
            issuer: issuer.clone(),
            refetch_min: Duration::from_millis(200),
        };
        s.auth.audience = "lablet-api".into();
    })
    .await;
    let get = |token: &str| client_with_token(token).get(server.url("/api/v1/work-orders")).send();

    let manager = sign(
        &first,
        &issuer,
        json!({"sub": "mona", "aud": "lablet-api", "realm_access": {"roles": ["manager", "offline_access"]}}),
    );
    assert_eq!(
        get(&manager).await.unwrap().status(),
        200,
        "roles come from realm_access"
    );
    let integrator = sign(
        &first,
        &issuer,
        json!({"sub": "svc", "aud": "lablet-api", "roles": ["integrator"]}),
    );
    assert_eq!(get(&integrator).await.unwrap().status(), 403);
    let elsewhere = sign(
        &first,
        &issuer,
        json!({"sub": "mona", "aud": "grafana", "roles": ["manager"]}),
    );
    assert_eq!(get(&elsewhere).await.unwrap().status(), 401, "another audience");
    let impostor = sign(
        &first,
        "http://127.0.0.1:1/realms/x",
        json!({"sub": "mona", "aud": "lablet-api", "roles": ["manager"]}),
    );
    assert_eq!(get(&impostor).await.unwrap().status(), 401, "another issuer");
    let early = sign(
        &first,
        &issuer,
        json!({"sub": "mona", "aud": "lablet-api", "roles": ["manager"], "nbf": chrono::Utc::now().timestamp() + 600}),
    );
    assert_eq!(get(&early).await.unwrap().status(), 401, "not valid yet");

    // The issuer rotates: a token of the new key is accepted once the keys are fetched again.
    let second = new_key("key-2");
    let rotated = sign(
        &second,
        &issuer,
        json!({"sub": "mona", "aud": "lablet-api", "roles": ["manager"]}),
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    published.lock().unwrap().push(second.jwk.clone());
    assert_eq!(
        get(&rotated).await.unwrap().status(),
        200,
        "an unknown kid refetches the JWKS"
    );

    // A key nobody published stays unknown, and the refusal says so without detail.
    let forged = sign(
        &new_key("key-3"),
        &issuer,
        json!({"sub": "mona", "aud": "lablet-api", "roles": ["admin"]}),
    );
    let answer = get(&forged).await.unwrap();
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("signing key is unknown"), "{challenge}");

    // A local HS256 token is no good once an issuer is configured.
    let local = lablet_tests::server::token(
        &lablet_infrastructure::Settings::defaults_in(tempfile::tempdir().unwrap().path()),
        "mona",
        &[lablet_api::auth::Role::Admin],
    );
    assert_eq!(get(&local).await.unwrap().status(), 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_are_verified_with_the_issuers_rsa_key() {
    let rsa = rsa_fixture_key("rsa-1");
    let published = Arc::new(Mutex::new(vec![rsa.jwk.clone(), new_key("ec-1").jwk]));
    let issuer = start_issuer(published).await;
    let server = TestServer::start_with(|s| {
        s.auth.issuer = TokenIssuer::Oidc {
            issuer: issuer.clone(),
            refetch_min: Duration::from_millis(200),
        };
    })
    .await;
    let get = |token: &str| client_with_token(token).get(server.url("/api/v1/work-orders")).send();
    let claims = json!({"sub": "rita", "aud": "lablet", "roles": ["manager"]});
    let token = sign(&rsa, &issuer, claims.clone());
    assert_eq!(get(&token).await.unwrap().status(), 200);

    // The same claims with another signature, or signed for another kid, are refused.
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap();
    flipped[0] ^= 1;
    let tampered = format!("{unsigned}.{}", URL_SAFE_NO_PAD.encode(flipped));
    assert_eq!(get(&tampered).await.unwrap().status(), 401);
    let misnamed = rsa_fixture_key("ec-1");
    assert_eq!(
        get(&sign(&misnamed, &issuer, claims)).await.unwrap().status(),
        401,
        "an RSA signature under the kid of an EC key"
    );
    server.stop().await;
}
