//! Authentication and roles: every route of the table refuses anonymous callers and callers
//! without its roles; tokens are checked strictly; API keys work and can be revoked; users
//! manage only their own instances; the actor of a command is its caller.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lablet_api::auth::{issue_local, Role, TokenRequest};
use lablet_api::routes::endpoints;
use lablet_infrastructure::auth_settings::{AuthSettings, TokenIssuer};
use lablet_tests::process::run_cli;
use lablet_tests::server::{client_with_token, error_fields, instance_request as instance, token};
use lablet_tests::TestServer;
use serde_json::{json, Value};
use std::time::Duration;

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");

/// `/api/v1/instances/{id}` with a fresh id in every `{…}`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(
    client: &reqwest::Client,
    server: &TestServer,
    method: &axum::http::Method,
    path: &str,
) -> reqwest::Response {
    let url = server.url(&concrete(path));
    let request = match *method {
        axum::http::Method::POST => client.post(url).json(&json!({})),
        axum::http::Method::DELETE => client.delete(url),
        _ => client.get(url),
    };
    request.send().await.expect("request sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_the_public_ones_needs_credentials_and_the_right_role() {
    let server = TestServer::start_with(|s| s.auth.metrics_public = false).await;
    let anonymous = reqwest::Client::new();
    let table = endpoints(false);
    let mut forbidden_checked = 0;
    for endpoint in &table {
        let (method, path) = (&endpoint.method, endpoint.path);
        let granted = endpoint.access.granted();
        let answer = call(&anonymous, &server, method, path).await;
        if granted.is_empty() {
            assert!(
                ["/health/live", "/health/ready", "/api/v1/openapi.json"].contains(&path),
                "{method} {path} is public but not meant to be"
            );
            assert_ne!(answer.status(), 401, "{method} {path}");
            continue;
        }
        assert_eq!(answer.status(), 401, "{method} {path} without credentials");
        let challenge = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["status"], 401);

        let lacking: Vec<Role> = Role::ALL.into_iter().filter(|r| !granted.contains(r)).collect();
        let outsider = client_with_token(&token(&server.settings, "outsider", &lacking));
        let answer = call(&outsider, &server, method, path).await;
        assert_eq!(answer.status(), 403, "{method} {path} with roles {lacking:?}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/forbidden", "{method} {path}");
        forbidden_checked += 1;

        let insider = client_with_token(&token(&server.settings, "insider", &[*granted.last().unwrap()]));
        if path != "/api/v1/stream" {
            let status = call(&insider, &server, method, path).await.status().as_u16();
            assert!(
                ![401, 403].contains(&status),
                "{method} {path} lets {granted:?} in: {status}"
            );
        }
    }
    assert_eq!(
        forbidden_checked,
        table.len() - 3,
        "every protected route refused a role without access"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_401_with_a_reason_and_no_detail_of_the_key() {
    let server = TestServer::start().await;
    let TokenIssuer::Local { key_file } = &server.settings.auth.issuer else {
        unreachable!("tests run on the local key")
    };
    let key_text = std::fs::read_to_string(key_file).unwrap();
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = token(
        &lablet_infrastructure::Settings::defaults_in(stranger_dir.path()),
        "mallory",
        &[Role::Admin],
    );
    let mut other_audience: AuthSettings = server.settings.auth.clone();
    other_audience.audience = "another-service".into();
    let request = |ttl| TokenRequest {
        subject: "alice".into(),
        roles: vec![Role::Admin],
        ttl,
    };
    let wrong_audience = issue_local(&other_audience, &request(Duration::from_secs(60))).unwrap();
    let valid = token(&server.settings, "alice", &[Role::Admin]);
    let mut parts: Vec<&str> = valid.split('.').collect();
    let forged_claims =
        URL_SAFE_NO_PAD.encode(br#"{"iss":"lablet","aud":"lablet","sub":"alice","roles":["admin"],"exp":4102444800}"#);
    parts[1] = &forged_claims;
    let tampered = parts.join(".");
    let cases = [
        ("Bearer not-a-token", "the token is malformed"),
        (
            &format!("Bearer {stranger}") as &str,
            "the token signature is not valid",
        ),
        (
            &format!("Bearer {wrong_audience}"),
            "the token is not meant for this service",
        ),
        (&format!("Bearer {tampered}"), "the token signature is not valid"),
        (&format!("Basic {valid}"), "use the Bearer scheme"),
    ];
    for (authorization, reason) in cases {
        let answer = reqwest::Client::new()
            .get(server.url("/api/v1/instances"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{authorization}");
        let challenge = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
        assert!(challenge.contains(reason), "{challenge} should say {reason}");
        let body = answer.text().await.unwrap();
        assert!(!body.contains(key_text.trim()) && !challenge.contains(key_text.trim()));
    }
    server.stop().await;
}

/// A token like the server's own, signed with its key, but with `exp` two minutes ago (past
/// the 30 seconds of clock skew the verifier allows).
/// A local admin token for alice with the time claims `times` (`iat`, `exp`, `nbf` …).
fn token_with_times(server: &TestServer, times: Value) -> String {
    let TokenIssuer::Local { key_file } = &server.settings.auth.issuer else {
        unreachable!("tests run on the local key")
    };
    let secret = URL_SAFE_NO_PAD
        .decode(std::fs::read_to_string(key_file).unwrap().trim())
        .unwrap();
    let kid = jsonwebtoken::decode_header(&token(&server.settings, "alice", &[Role::Admin]))
        .unwrap()
        .kid;
    let mut claims = json!({"iss": "lablet", "aud": "lablet", "sub": "alice", "roles": ["admin"]});
    for (claim, value) in times.as_object().unwrap() {
        claims[claim] = value.clone();
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = kid;
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&secret)).unwrap()
}

fn expired_token(server: &TestServer) -> String {
    let now = chrono::Utc::now().timestamp();
    token_with_times(server, json!({"iat": now - 3600, "exp": now - 120}))
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
    let server = TestServer::start().await;
    let now = chrono::Utc::now().timestamp();
    let early = token_with_times(&server, json!({"iat": now, "nbf": now + 600, "exp": now + 3600}));
    let answer = client_with_token(&early)
        .get(server.url("/api/v1/instances"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("not valid yet"), "{challenge}");
    // Within the 30 s leeway, a clock a little ahead of ours is accepted.
    let skewed = token_with_times(&server, json!({"iat": now, "nbf": now + 10, "exp": now + 3600}));
    let answer = client_with_token(&skewed)
        .get(server.url("/api/v1/instances"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let server = TestServer::start().await;
    let answer = client_with_token(&expired_token(&server))
        .get(server.url("/api/v1/instances"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("the token has expired"), "{challenge}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_act_with_their_roles_and_stop_when_revoked() {
    let server = TestServer::start().await;
    let (status, created, _) = server
        .post(
            "/api/v1/api-keys",
            &json!({"name": "grading-engine", "roles": ["integrator"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, listed) = server.get("/api/v1/api-keys").await;
    assert!(!listed.to_string().contains(&key), "the key is never shown again");
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert!(listed["items"][0].get("secret_sha256").is_none());

    let with_key = |path: &str| {
        reqwest::Client::new()
            .post(server.url(path))
            .header("x-api-key", key.clone())
    };
    let event = json!({"specversion": "1.0", "id": "e-1", "source": "/grader", "type": "io.example.ping", "data": {}});
    let answer = with_key("/api/v1/events")
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let (_, log) = server.get("/api/v1/audit/events?limit=1000").await;
    let actors: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"].as_str().unwrap().starts_with("inbox_message."))
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        !actors.is_empty() && actors.contains(&format!("apikey:{id}").as_str()),
        "{actors:?}"
    );
    let answer = with_key("/api/v1/work-orders")
        .json(&json!({"kind": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403, "an integrator key cannot operate");

    let (status, revoked, _) = server.post(&format!("/api/v1/api-keys/{id}/revoke"), &json!({})).await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    let answer = with_key("/api/v1/events").json(&event).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert!(answer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("revoked"));
    let (status, problem, _) = server.post("/api/v1/api-keys", &json!({"name": "", "roles": []})).await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&problem), ["name", "roles"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_issues_tokens_and_keys_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let issued = run_cli(
        LABLET,
        dir.path(),
        &["token", "issue", "--sub", "carol", "--role", "auditor", "--ttl", "15m"],
    );
    assert_eq!(issued.code, Some(0), "{}", issued.stderr);
    let created = run_cli(
        LABLET,
        dir.path(),
        &["apikey", "create", "--role", "manager", "--name", "ops"],
    );
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let refused = run_cli(LABLET, dir.path(), &["apikey", "create", "--role", "wizard"]);
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains("not a role"), "{}", refused.stderr);

    let server = TestServer::start_in(lablet_infrastructure::Settings::defaults_in(dir.path())).await;
    let auditor = client_with_token(issued.stdout.trim());
    let answer = auditor.get(server.url("/api/v1/audit/events")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer = auditor
        .post(server.url("/api/v1/work-orders"))
        .json(&json!({"kind": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403, "an auditor changes nothing");
    let answer = reqwest::Client::new()
        .post(server.url("/api/v1/work-orders"))
        .header("x-api-key", created.stdout.trim())
        .json(&json!({"kind": "report.render"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "a manager key operates");

    let rotated = run_cli(LABLET, dir.path(), &["token", "rotate-key"]);
    assert_eq!(rotated.code, Some(0), "{}", rotated.stderr);
    let fresh = run_cli(
        LABLET,
        dir.path(),
        &["token", "issue", "--sub", "carol", "--role", "auditor"],
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for token in [issued.stdout.trim(), fresh.stdout.trim()] {
        let answer = client_with_token(token)
            .get(server.url("/api/v1/audit/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            200,
            "tokens of the new and the previous key both verify"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_manage_only_their_own_instances_and_managers_any() {
    let server = TestServer::start().await;
    let definition = server.active_definition("ospf").await;
    let instance = |reservation: &str, owner: &str| instance(&definition, reservation, owner);
    let as_user = |name: &str| client_with_token(&token(&server.settings, name, &[Role::User]));
    let (alice, bob) = (as_user("alice"), as_user("bob"));
    let manager = client_with_token(&token(&server.settings, "mona", &[Role::Manager]));
    let post = |client: &reqwest::Client, path: &str, body: Value| client.post(server.url(path)).json(&body).send();

    let answer = post(&alice, "/api/v1/instances", instance("r-1", "bob")).await.unwrap();
    assert_eq!(answer.status(), 403, "alice cannot reserve for bob");
    let answer = post(&alice, "/api/v1/instances", instance("r-1", "alice"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let id = answer.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let timeslot = format!("/api/v1/instances/{id}/timeslot");
    let later = json!({"timeslot_end": "2030-12-01T11:00:00Z"});
    let answer = post(&bob, &timeslot, later.clone()).await.unwrap();
    assert_eq!(answer.status(), 403, "bob cannot touch alice's instance");
    let answer = post(&alice, &timeslot, later).await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer = post(&manager, &timeslot, json!({"timeslot_end": "2030-12-01T12:00:00Z"}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "a manager manages every instance");
    let (_, log) = server.get(&format!("/api/v1/audit/streams/lablet_instance-{id}")).await;
    let actors: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        ["user:alice", "user:alice", "user:mona"],
        "each event records who caused it, namespaced by origin"
    );

    // The lifecycle is not the owner's to move; ending it is.
    let transitions = format!("/api/v1/instances/{id}/transitions");
    let answer = post(&alice, &transitions, json!({"to": "scheduled"})).await.unwrap();
    assert_eq!(answer.status(), 403, "an owner does not schedule their own instance");
    let answer = post(&manager, &transitions, json!({"to": "scheduled"})).await.unwrap();
    assert_eq!(answer.status(), 200, "a manager does");
    let answer = post(&alice, &transitions, json!({"to": "instantiating"}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let score = json!({"total": 1.0, "max": 1.0, "passed": true});
    let answer = post(&alice, &format!("/api/v1/instances/{id}/score"), score)
        .await
        .unwrap();
    assert_eq!(answer.status(), 403, "nor grade it");
    let answer = post(&bob, &transitions, json!({"to": "terminated"})).await.unwrap();
    assert_eq!(answer.status(), 403, "bob cannot end alice's instance");
    let answer = post(
        &alice,
        &transitions,
        json!({"to": "terminated", "reason": "done early"}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200, "alice ends her own");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_read_only_their_own_instances_managers_and_auditors_all() {
    let server = TestServer::start().await;
    let definition = server.active_definition("ospf").await;
    let instance = |reservation: &str, owner: &str| instance(&definition, reservation, owner);
    let as_caller = |name: &str, role: Role| client_with_token(&token(&server.settings, name, &[role]));
    let (alice, bob) = (as_caller("alice", Role::User), as_caller("bob", Role::User));
    let mut ids = Vec::new();
    for (client, owner) in [(&alice, "alice"), (&bob, "bob")] {
        let answer = client
            .post(server.url("/api/v1/instances"))
            .json(&instance(&format!("r-{owner}"), owner))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let position: u64 = answer.headers()["lablet-position"].to_str().unwrap().parse().unwrap();
        ids.push((
            answer.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned(),
            position,
        ));
    }
    let (alice_id, _) = &ids[0];
    let (bob_id, last) = &ids[1];
    let get = |client: &reqwest::Client, path: String| {
        client
            .get(server.url(&path))
            .header("lablet-min-position", last.to_string())
            .send()
    };
    let owners = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["owner_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let mine = get(&alice, "/api/v1/instances".into())
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(owners(&mine), ["alice"], "a user lists only their own");
    let answer = get(&alice, "/api/v1/instances?owner_id=bob".into()).await.unwrap();
    assert_eq!(answer.status(), 403);
    let answer = get(&alice, format!("/api/v1/instances/{bob_id}")).await.unwrap();
    assert_eq!(answer.status(), 404, "another user's instance is not there for alice");
    let answer = get(&alice, format!("/api/v1/instances/{alice_id}")).await.unwrap();
    assert_eq!(answer.status(), 200);

    for (name, role) in [
        ("mona", Role::Manager),
        ("audrey", Role::Auditor),
        ("root", Role::Admin),
    ] {
        let client = as_caller(name, role);
        let all = get(&client, "/api/v1/instances".into())
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(owners(&all).len(), 2, "{name} sees every instance");
        let answer = get(&client, format!("/api/v1/instances/{bob_id}")).await.unwrap();
        assert_eq!(answer.status(), 200, "{name} reads bob's instance");
    }
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_every_file_in_it_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("fresh/data");
    let server = TestServer::start_in(lablet_infrastructure::Settings::defaults_in(&data)).await;
    let (status, _, _) = server.post("/api/v1/work-orders", &json!({"kind": "mail.send"})).await;
    assert_eq!(status, 201);
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&root.path().join("fresh")), 0o700, "a parent Lablet made");
    let mut files = Vec::new();
    let mut dirs = vec![data.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["lablet.db", "lablet.db-wal", "read_models.db", "hs256.key"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    server.stop().await;
}
