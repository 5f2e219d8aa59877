//! Every projector through the harness: a realistic stream in, the document and its history
//! out, checked field by field and kept as a snapshot (`snapshots/`), so any change to a read
//! model's shape shows up in review.

use crate::projectors::{
    projector_of, LabRecordsProjector, LabletInstancesProjector, WorkOrdersProjector, WorkersProjector,
};
use crate::testing::{project, stream};
use chrono::{DateTime, Utc};
use lablet_domain::lab_record::{LabDetails, LabRecordEvent, LabState, RemovalReason};
use lablet_domain::lablet_instance::InstanceState;
use lablet_domain::lablet_instance::{LabletInstanceEvent, StateChange};
use lablet_domain::work_order::{Lease, ResourceNeeds, WorkOrderEvent, WorkOrderState};
use lablet_domain::worker::{Capacity, ServiceStatus, WorkerEvent, WorkerMetrics, WorkerStatus};
use lablet_domain::AggregateKind;
use serde_json::json;
use uuid::Uuid;

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_442_000, 0).unwrap() + chrono::Duration::minutes(minute)
}

fn snapshot(name: &str, document: &serde_json::Map<String, serde_json::Value>, history: &impl serde::Serialize) {
    // Keys sorted: whether serde_json keeps insertion order depends on the features the rest
    // of the build turns on.
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(name, json!({"document": document, "operation_history": history}));
    });
}

#[test]
fn every_kind_with_a_read_model_has_its_projector() {
    for kind in AggregateKind::ALL {
        if let Some(projector) = projector_of(kind) {
            assert_eq!(projector.kind(), kind);
        }
    }
}

#[test]
fn lab_records_follow_discovery_changes_and_removal() {
    let worker = Uuid::from_u128(7);
    let details = LabDetails {
        title: "OSPF".into(),
        node_count: 4,
        groups: vec!["students".into()],
        ..LabDetails::default()
    };
    let events = [
        LabRecordEvent::Discovered {
            worker_id: worker,
            lab_id: "lab-1".into(),
            details: details.clone(),
            state: LabState::Stopped,
            cml_created_at: Some(at(0)),
            cml_modified_at: Some(at(0)),
            discovered_at: at(1),
        },
        LabRecordEvent::StateChanged {
            previous: LabState::Stopped,
            new: LabState::Started,
            changed_at: at(2),
        },
        LabRecordEvent::Removed {
            reason: RemovalReason::VanishedFromCml,
            removed_at: at(3),
        },
    ];
    let (document, history) = project(&LabRecordsProjector, &stream("lab_record-1", &events)).unwrap();
    assert_eq!(
        (document["state"].as_str(), document["title"].as_str()),
        (Some("STARTED"), Some("OSPF"))
    );
    assert!(document["removed_at"].is_string());
    assert_eq!(history.len(), 3);
    assert_eq!(
        (history[1].previous_state.clone(), history[1].new_state.clone()),
        (Some(json!("STOPPED")), Some(json!("STARTED")))
    );
    snapshot("lab_records", &document, &history);
}

#[test]
fn lablet_instances_follow_their_state_machine_and_score() {
    let change = |from, minute| StateChange {
        from,
        reason: None,
        at: at(minute),
    };
    let events = [
        LabletInstanceEvent::Requested {
            definition_id: Uuid::from_u128(1),
            definition_version: "1.2.0".into(),
            owner_id: "alice".into(),
            reservation_id: "res-1".into(),
            timeslot_start: at(60),
            timeslot_end: at(120),
            requested_at: at(0),
        },
        LabletInstanceEvent::CapacityRequested {
            reason: "no worker can take it: 1 capacity".into(),
            needs: Capacity {
                cpu_cores: 4,
                memory_gb: 8,
                storage_gb: 20,
                max_nodes: 3,
            },
            placement: lablet_domain::lablet_instance::PlacementSummary {
                candidates: 0,
                rejected: [("capacity".to_owned(), 1)].into_iter().collect(),
                examples: Vec::new(),
            },
            at: at(1),
        },
        LabletInstanceEvent::Scheduled {
            change: change(InstanceState::Pending, 1),
            worker_id: Some(Uuid::from_u128(7)),
            ports: [("console".to_owned(), 2000)].into_iter().collect(),
            placement: Some(lablet_domain::lablet_instance::PlacementSummary {
                candidates: 1,
                rejected: std::collections::BTreeMap::new(),
                examples: Vec::new(),
            }),
        },
        LabletInstanceEvent::InstantiationStarted(change(InstanceState::Scheduled, 2)),
        LabletInstanceEvent::Started(change(InstanceState::Instantiating, 3)),
        LabletInstanceEvent::TimeslotExtended {
            previous_end: at(120),
            new_end: at(150),
            at: at(4),
        },
    ];
    let (document, history) = project(&LabletInstancesProjector, &stream("lablet_instance-1", &events)).unwrap();
    assert_eq!(document["state"], "running");
    assert_eq!(document["worker_id"], Uuid::from_u128(7).to_string());
    assert_eq!(document["timeslot_end"], json!(at(150)));
    assert_eq!(history.last().unwrap().changed_fields.len(), 1, "only the end moved");
    snapshot("lablet_instances", &document, &history);
}

#[test]
fn work_orders_keep_every_attempt() {
    let events = [
        WorkOrderEvent::Submitted {
            kind: "lab.start".into(),
            payload: json!({"lab_id": "lab-1"}),
            priority: 5,
            max_attempts: 3,
            resources: ResourceNeeds::default(),
            submitted_at: at(0),
            unique_key: Some("start:lab-1".into()),
        },
        WorkOrderEvent::Leased {
            lease: Lease {
                executor: "executor-1".into(),
                expires_at: at(10),
            },
            attempt: 1,
            at: at(1),
        },
        WorkOrderEvent::LeaseRenewed {
            attempt: 1,
            expires_at: at(12),
            at: at(2),
        },
        WorkOrderEvent::AttemptFailed {
            attempt: 1,
            error: "CML unreachable".into(),
            next_attempt_at: at(3),
            at: at(2),
        },
        WorkOrderEvent::Requeued { at: at(3) },
        WorkOrderEvent::Cancelled {
            from: WorkOrderState::Pending,
            reason: Some("no longer needed".into()),
            at: at(4),
        },
    ];
    let (document, history) = project(&WorkOrdersProjector, &stream("work_order-1", &events)).unwrap();
    assert_eq!(document["state"], "cancelled");
    assert_eq!(history.len(), 6);
    snapshot("work_orders", &document, &history);
}

#[test]
fn workers_show_status_capacity_figures_and_refused_credentials() {
    let capacity = Capacity {
        cpu_cores: 32,
        memory_gb: 128,
        storage_gb: 500,
        max_nodes: 100,
    };
    let events = [
        WorkerEvent::Registered {
            name: "cml-1".into(),
            region: "eu-west-1".into(),
            endpoint: Some("https://cml-1.example.test".into()),
            template_name: None,
            instance_id: None,
            declared_capacity: capacity,
            status: WorkerStatus::Running,
            insecure_tls: false,
            idle_detection_enabled: true,
            registered_by: "user:alice".into(),
            registered_at: at(0),
        },
        WorkerEvent::ServiceStatusChanged {
            previous: ServiceStatus::Unavailable,
            new: ServiceStatus::Available,
            changed_at: at(1),
        },
        WorkerEvent::MetricsRecorded {
            cml_version: Some("2.9.0".into()),
            license: None,
            metrics: Some(WorkerMetrics {
                cpu_percent: 12.5,
                memory_percent: 40.0,
                disk_percent: 20.0,
                labs_count: 3,
                running_nodes: 25,
            }),
            recorded_at: at(1),
        },
        WorkerEvent::CredentialsRefused { refused_at: at(2) },
    ];
    let (document, history) = project(&WorkersProjector, &stream("cml_worker-1", &events)).unwrap();
    assert_eq!(
        (document["status"].as_str(), document["service_status"].as_str()),
        (Some("running"), Some("available"))
    );
    assert_eq!(document["utilisation"]["nodes_percent"], 25.0);
    assert_eq!(document["credentials_refused"], true);
    snapshot("workers", &document, &history);
}

#[test]
fn workers_show_the_capacity_and_ports_their_instances_hold() {
    let declared = Capacity {
        cpu_cores: 16,
        memory_gb: 64,
        storage_gb: 100,
        max_nodes: 40,
    };
    let needs = Capacity {
        cpu_cores: 4,
        memory_gb: 16,
        storage_gb: 20,
        max_nodes: 6,
    };
    let (first, second) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    let ports = |pairs: &[(&str, u16)]| pairs.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect();
    let events = [
        WorkerEvent::Registered {
            name: "cml-1".into(),
            region: "eu-west-1".into(),
            endpoint: Some("https://cml-1.example.test".into()),
            template_name: None,
            instance_id: None,
            declared_capacity: declared,
            status: WorkerStatus::Running,
            insecure_tls: false,
            idle_detection_enabled: true,
            registered_by: "user:alice".into(),
            registered_at: at(0),
        },
        WorkerEvent::CapacityAllocated {
            instance_id: first,
            capacity: needs,
            ports: ports(&[("console", 2000), ("ssh", 2001)]),
            allocated_at: at(1),
        },
        WorkerEvent::CapacityAllocated {
            instance_id: second,
            capacity: needs,
            ports: ports(&[("ssh", 2002)]),
            allocated_at: at(2),
        },
        WorkerEvent::CapacityReleased {
            instance_id: first,
            capacity: needs,
            ports: ports(&[("console", 2000), ("ssh", 2001)]),
            reason: "terminated".into(),
            released_at: at(3),
        },
        WorkerEvent::CapacityDeclared {
            previous: declared,
            new: Capacity {
                cpu_cores: 6,
                ..declared
            },
            declared_by: "user:admin".into(),
            declared_at: at(4),
        },
    ];
    let (document, history) = project(&WorkersProjector, &stream("cml_worker-1", &events)).unwrap();
    assert_eq!(document["allocated_capacity"]["cpu_cores"], 4);
    assert_eq!(document["available_capacity"]["cpu_cores"], 2, "6 declared, 4 held");
    assert_eq!(document["available_capacity"]["memory_gb"], 48);
    assert_eq!(document["ports_in_use"], 1);
    assert_eq!(document["free_ports"], 7999);
    assert_eq!(document["allocations"][second.to_string()]["ports"]["ssh"], 2002);
    assert!(document["allocations"].get(first.to_string()).is_none());
    snapshot("workers_allocations", &document, &history);
}

#[test]
fn lablet_definitions_keep_every_version_and_which_one_is_active() {
    use crate::projectors::LabletDefinitionsProjector;
    use lablet_domain::lablet_definition::{LabletDefinitionEvent, Resources, VersionContent};
    let content = VersionContent {
        artifact_uri: "https://artifacts.example.test/ospf.yaml".into(),
        topology_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        resources: Resources {
            cpu_cores: 4,
            memory_gb: 16,
            storage_gb: 20,
            nested_virtualization: false,
        },
        license_affinity: Vec::new(),
        node_count: 3,
        ports: Vec::new(),
        grading_rules_uri: None,
        max_duration_minutes: 60,
        warm_pool_depth: 0,
    };
    let added = |version: &str, minute| LabletDefinitionEvent::VersionAdded {
        version: version.into(),
        content: content.clone(),
        added_by: "user:admin".into(),
        added_at: at(minute),
    };
    let events = [
        LabletDefinitionEvent::Created {
            name: "ospf".into(),
            created_by: "user:admin".into(),
            created_at: at(0),
        },
        added("1.0.0", 0),
        LabletDefinitionEvent::VersionSyncFailed {
            version: "1.0.0".into(),
            reason: "the artifact could not be read: 404".into(),
            failed_at: at(1),
        },
        LabletDefinitionEvent::VersionActivated {
            version: "1.0.0".into(),
            activated_at: at(2),
        },
        added("1.1.0", 3),
        LabletDefinitionEvent::VersionActivated {
            version: "1.1.0".into(),
            activated_at: at(4),
        },
        LabletDefinitionEvent::VersionDeprecated {
            version: "1.0.0".into(),
            reason: "superseded by 1.1.0".into(),
            deprecated_by: "system".into(),
            deprecated_at: at(4),
        },
    ];
    let (document, history) = project(&LabletDefinitionsProjector, &stream("lablet_definition-1", &events)).unwrap();
    assert_eq!(document["active_version"], "1.1.0");
    assert_eq!(document["latest_version"], "1.1.0");
    assert_eq!(document["status"], "active");
    assert_eq!(document["versions"][0]["status"], "deprecated");
    assert_eq!(
        document["versions"][0]["sync_error"],
        serde_json::Value::Null,
        "cleared by the sync that matched"
    );
    assert_eq!(history.len(), events.len());
    snapshot("lablet_definitions", &document, &history);
}

#[test]
fn worker_templates_follow_their_changes() {
    use crate::projectors::WorkerTemplatesProjector;
    use lablet_domain::worker::{LicenseType, PortRange};
    use lablet_domain::worker_template::{TemplateContent, WorkerTemplateEvent};
    let content = |cost: f64| TemplateContent {
        instance_type: "m5zn.metal".into(),
        image_pattern: "cml-2.9-*".into(),
        declared_capacity: Capacity {
            cpu_cores: 48,
            memory_gb: 192,
            storage_gb: 1000,
            max_nodes: 120,
        },
        license_type: LicenseType::Enterprise,
        port_range: PortRange::default(),
        drain_timeout_minutes: 60,
        hourly_cost: cost,
        region: Some("eu-west-1".into()),
    };
    let events = [
        WorkerTemplateEvent::Defined {
            name: "metal-large".into(),
            content: content(3.96),
            enabled: true,
            defined_by: "system".into(),
            defined_at: at(0),
        },
        WorkerTemplateEvent::Changed {
            content: content(4.5),
            changed_by: "user:admin".into(),
            changed_at: at(1),
        },
        WorkerTemplateEvent::Disabled {
            by: "user:admin".into(),
            at: at(2),
        },
    ];
    let (document, history) = project(&WorkerTemplatesProjector, &stream("worker_template-1", &events)).unwrap();
    assert_eq!(document["hourly_cost"], 4.5);
    assert_eq!(document["enabled"], false);
    assert_eq!(document["license_type"], "enterprise");
    snapshot("worker_templates", &document, &history);
}
