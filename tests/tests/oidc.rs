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

/// A P-256 signing key and its public JWK.
struct IssuerKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

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
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk,
    }
}

fn sign(key: &IssuerKey, issuer: &str, claims: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = claims;
    claims["iss"] = json!(issuer);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 300);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&key.pkcs8)).unwrap()
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
