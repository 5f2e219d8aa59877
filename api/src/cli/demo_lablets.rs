//! The lablets of `lablet serve --demo`: a definition whose topology is a file in the data
//! directory, three reservations starting a minute from now and lasting two to four minutes,
//! and a stand-in grading system that answers each collection through the inbox. A newcomer
//! watches the instances go from `pending` through `running` to `terminated` within about five
//! minutes: the demo's timeslots are that short, and its scheduler and lifecycle run every
//! second or two instead of every few.

use lablet_application::inbox::ReceiveCloudEvent;
use lablet_application::ports::read_models::{Filter, ListQuery};
use lablet_application::ports::{Clock, SystemClock};
use lablet_application::read_model_queries::{GetDocument, ListDocuments, LABLET_DEFINITIONS, LABLET_INSTANCES};
use lablet_application::{AppError, Execute, Mediator, RequestContext};
use lablet_domain::lablet_definition::{definition_id, LabletDefinition, LabletDefinitionCommand, SemVer};
use lablet_domain::lablet_instance::{
    instance_id_for_reservation, InstanceRequest, LabletInstance, LabletInstanceCommand,
};
use lablet_domain::values::{Name, Timeslot};
use lablet_domain::DomainError;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const DEFINITION: &str = "demo-ospf";
const VERSION: &str = "1.0.0";
const TOPOLOGY: &str = "lab:\n  title: OSPF area 0\nnodes:\n  - id: r1\n  - id: r2\n  - id: r3\nlinks:\n  - {i1: r1, i2: r2}\n  - {i1: r2, i2: r3}\n";
/// How often the stand-in grading system looks for collections to answer.
const GRADER_EVERY: Duration = Duration::from_secs(2);

/// Books the demo's lablets, then plays the grading system until the demo stops.
pub async fn run(mediator: Arc<Mediator>, data_dir: std::path::PathBuf, context: RequestContext) {
    match book(&mediator, &data_dir, &context).await {
        Ok(()) => grade_forever(mediator, context).await,
        Err(err) => eprintln!("demo: the lablets could not be booked: {err}"),
    }
}

/// Creates the demo definition (once per data directory), waits until its artifact sync made
/// it active, and books the demo's reservations.
async fn book(mediator: &Mediator, data_dir: &std::path::Path, context: &RequestContext) -> Result<(), String> {
    let file = data_dir.join("demo-ospf.yaml");
    std::fs::write(&file, TOPOLOGY).map_err(|e| format!("{}: {e}", file.display()))?;
    let id = definition_id(DEFINITION);
    let spec = serde_json::from_value(json!({
        "artifact_uri": format!("file://{}", file.display()),
        "topology_sha256": lablet_infrastructure::artifacts::sha256_hex(TOPOLOGY.as_bytes()),
        "resources": {"cpu_cores": 4, "memory_gb": 8, "storage_gb": 10},
        "node_count": 3,
        "ports": [{"name": "console", "protocol": "tcp"}, {"name": "ssh", "protocol": "tcp"}],
    }))
    .map_err(|e| format!("the demo definition: {e}"))?;
    let create = LabletDefinitionCommand::Create {
        name: Name::parse(DEFINITION)?,
        version: SemVer::parse(VERSION)?,
        spec,
    };
    match mediator
        .send(Execute::<LabletDefinition>::on(id, create), context)
        .await
    {
        Ok(_) | Err(AppError::Rule(DomainError::AlreadyExists { .. })) => {}
        Err(err) => return Err(err.to_string()),
    }
    wait_until_active(mediator, &id.to_string(), context).await?;
    let now = SystemClock.now();
    let run = run_tag();
    for (n, minutes) in [2, 3, 4].into_iter().enumerate() {
        let start = now + chrono::Duration::minutes(1);
        let reservation = format!("demo-{run}-{}", n + 1);
        let request = InstanceRequest {
            definition_id: id,
            definition_version: Name::parse(VERSION)?,
            owner_id: Name::parse(format!("student{}", n + 1))?,
            reservation_id: Name::parse(reservation.clone())?,
            timeslot: Timeslot::new(start, start + chrono::Duration::minutes(minutes))?,
        };
        let command = Execute::<LabletInstance>::on(
            instance_id_for_reservation(&reservation),
            LabletInstanceCommand::Request(request),
        );
        mediator.send(command, context).await.map_err(|e| e.to_string())?;
        println!("demo: booked {reservation}: a {minutes}-minute slot starting in a minute");
    }
    Ok(())
}

/// A short tag telling this demo run's reservations from an earlier run's.
fn run_tag() -> String {
    use lablet_application::ports::{IdSource, UuidV7Ids};
    UuidV7Ids.new_id().simple().to_string()[24..].to_owned()
}

async fn wait_until_active(mediator: &Mediator, id: &str, context: &RequestContext) -> Result<(), String> {
    for _ in 0..120 {
        let query = GetDocument {
            collection: LABLET_DEFINITIONS,
            id: id.to_owned(),
            min_position: None,
        };
        if let Ok(document) = mediator.send(query, context).await {
            let document: Value = serde_json::from_str(document.get()).unwrap_or_default();
            if document["active_version"] == VERSION {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("the demo definition {DEFINITION} never became active"))
}

/// The stand-in grading system: answers every collection request with a completed collection,
/// and every instance being graded with a score, as CloudEvents through the inbox.
async fn grade_forever(mediator: Arc<Mediator>, context: RequestContext) {
    loop {
        tokio::time::sleep(GRADER_EVERY).await;
        for (state, event_type) in [("collecting", "collection.completed"), ("grading", "grading.completed")] {
            let Ok(instances) = in_state(&mediator, state, &context).await else {
                continue;
            };
            for instance in instances {
                if state == "collecting" && instance["assessment_requested_at"].is_null() {
                    continue;
                }
                let Some(id) = instance["id"].as_str() else { continue };
                let data = if state == "collecting" {
                    json!({"instance_id": id, "collection_id": format!("demo-{id}")})
                } else {
                    json!({"instance_id": id, "score": {"total": 8, "max": 10}, "passed": true})
                };
                let event = ReceiveCloudEvent {
                    source: "/demo/grading".into(),
                    id: format!("{event_type}-{id}"),
                    event_type: format!("io.lablet.assessment.{event_type}"),
                    subject: None,
                    time: None,
                    data,
                };
                if let Err(err) = mediator.send(event, &context).await {
                    tracing::warn!(error = %err, "the demo grader could not answer");
                }
            }
        }
    }
}

async fn in_state(mediator: &Mediator, state: &str, context: &RequestContext) -> Result<Vec<Value>, AppError> {
    let query = ListDocuments {
        collection: LABLET_INSTANCES,
        query: ListQuery {
            filters: vec![Filter::Equals {
                field: "state",
                value: state.to_owned(),
            }],
            limit: 100,
            after_id: None,
            include_history: false,
        },
        min_position: None,
    };
    let page = mediator.send(query, context).await?;
    Ok(page
        .items
        .iter()
        .filter_map(|item| serde_json::from_str(item.get()).ok())
        .collect())
}
