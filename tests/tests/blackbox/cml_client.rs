//! The CML client against the simulator over HTTP: every call Lablet uses, with CML's answers
//! and errors.

use lablet_application::ports::cml::LabAction;
use lablet_application::ports::{CmlClient, CmlCredentials, CmlError};
use lablet_cml_simulator::{RunningSimulator, SimulatorConfig};
use lablet_infrastructure::cml::{CmlClientSettings, HttpCmlClient};
use serde_json::json;

async fn simulator() -> RunningSimulator {
    let config = SimulatorConfig {
        password: "pw".into(),
        ..SimulatorConfig::default()
    };
    RunningSimulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("simulator starts")
}

fn client(simulator: &RunningSimulator, password: &str) -> HttpCmlClient {
    let credentials = CmlCredentials {
        username: "admin".into(),
        password: password.into(),
    };
    HttpCmlClient::new(
        reqwest::Client::new(),
        &simulator.url(),
        credentials,
        CmlClientSettings::default(),
    )
}

#[tokio::test]
async fn the_client_speaks_every_call_lablet_uses() {
    let cml = simulator().await;
    let client = client(&cml, "pw");
    assert_eq!(client.system_information().await.unwrap().version, "2.9.0+build.12");
    assert!(client.system_health().await.unwrap().valid);
    assert_eq!(client.system_stats().await.unwrap().cpu_percent, 12.5);
    let licensing = client.licensing().await.unwrap();
    assert_eq!(licensing.product_license.as_deref(), Some("CML_Enterprise"));
    assert!(licensing.expires_at.is_some());

    let topology =
        json!({"lab": {"title": "Imported", "description": "from a file"}, "nodes": [{}, {}], "links": [{}]});
    let imported = client.import_lab(&topology, Some("Renamed on import")).await.unwrap();
    assert!(imported.warnings.is_empty());
    let lab = client.lab(&imported.id).await.unwrap();
    assert_eq!(
        (
            lab.title.as_str(),
            lab.description.as_str(),
            lab.node_count,
            lab.link_count
        ),
        ("Renamed on import", "from a file", 2, 1)
    );
    assert_eq!(client.lab_ids().await.unwrap(), vec![imported.id.clone()]);
    assert!(client
        .download_lab(&imported.id)
        .await
        .unwrap()
        .contains("title: \"Renamed on import\""));

    client.lab_action(&imported.id, LabAction::Start).await.unwrap();
    assert_eq!(client.lab(&imported.id).await.unwrap().state, "STARTED");
    // CML refuses to wipe or delete a running lab: an answer about the request, not a failure.
    for refused in [
        client.lab_action(&imported.id, LabAction::Wipe).await,
        client.delete_lab(&imported.id).await,
    ] {
        let err = refused.unwrap_err();
        assert!(
            matches!(err, CmlError::Status { status: 400, .. }) && err.is_answer(),
            "{err}"
        );
    }
    client.lab_action(&imported.id, LabAction::Stop).await.unwrap();
    client.lab_action(&imported.id, LabAction::Wipe).await.unwrap();
    assert_eq!(client.lab(&imported.id).await.unwrap().state, "DEFINED_ON_CORE");
    client.delete_lab(&imported.id).await.unwrap();
    assert!(matches!(
        client.lab(&imported.id).await,
        Err(CmlError::Status { status: 404, .. })
    ));

    let categories: Vec<String> = client
        .telemetry_events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.category)
        .collect();
    for expected in ["import_lab", "start_lab", "stop_lab"] {
        assert!(categories.iter().any(|c| c == expected), "{expected} in {categories:?}");
    }
    cml.stop().await;
}

#[tokio::test]
async fn bad_credentials_and_bad_lab_ids_are_refused_before_harm() {
    let cml = simulator().await;
    let wrong = client(&cml, "not-the-password");
    assert_eq!(wrong.lab_ids().await, Err(CmlError::AuthenticationFailed(403)));
    // Information needs no authentication.
    assert!(wrong.system_information().await.is_ok());
    let right = client(&cml, "pw");
    assert!(matches!(
        right.lab("../system_stats").await,
        Err(CmlError::Malformed(_))
    ));
    assert!(matches!(right.lab("").await, Err(CmlError::Malformed(_))));
    cml.stop().await;
}
