//! Stored events are a contract: `tests/golden/events/<event_type>.v<N>.json` holds one stored
//! payload of every event type at every schema version, and every test run decodes them all.
//! A payload at its type's current version must come back byte for byte (as JSON) when the
//! decoded event is encoded again; an older one must decode through the upcasters. Renaming a
//! Rust type or field therefore fails here before it can change or break stored data.

use lablet_domain::inbox_message::InboxMessageEvent;
use lablet_domain::lab_record::LabRecordEvent;
use lablet_domain::lablet_definition::LabletDefinitionEvent;
use lablet_domain::lablet_instance::LabletInstanceEvent;
use lablet_domain::work_order::WorkOrderEvent;
use lablet_domain::worker::WorkerEvent;
use lablet_domain::worker_template::WorkerTemplateEvent;
use lablet_domain::{decode_event, encode_event, AggregateKind, DomainEvent};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/events")
}

/// Every golden file as `event_type → {version → payload text}`.
fn golden_files() -> BTreeMap<String, BTreeMap<u32, String>> {
    let mut files: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
    for entry in std::fs::read_dir(golden_dir()).expect("the golden directory exists") {
        let path = entry.expect("a readable entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 name")
            .to_owned();
        let stem = name
            .strip_suffix(".json")
            .unwrap_or_else(|| panic!("{name} is not a .json file"));
        let (event_type, version) = stem
            .rsplit_once(".v")
            .unwrap_or_else(|| panic!("{name} is not <event_type>.v<N>.json"));
        let version: u32 = version.parse().unwrap_or_else(|_| panic!("{name}: bad version"));
        let payload = std::fs::read_to_string(&path).expect("a readable golden file");
        files.entry(event_type.to_owned()).or_default().insert(version, payload);
    }
    files
}

/// Checks the golden files of one event enum; answers the event types it covered.
fn check<E: DomainEvent>(kind: AggregateKind, files: &BTreeMap<String, BTreeMap<u32, String>>) -> Vec<String> {
    for event_type in E::EVENT_TYPES {
        assert_eq!(
            AggregateKind::of_event_type(event_type),
            Some(kind),
            "{event_type} is not named after its kind"
        );
        let versions = files.get(*event_type).unwrap_or_else(|| {
            panic!("no golden payload for {event_type}: add tests/golden/events/{event_type}.v1.json")
        });
        let newest = *versions.keys().max().expect("at least one version");
        assert_eq!(
            versions.keys().copied().collect::<Vec<_>>(),
            (1..=newest).collect::<Vec<_>>(),
            "{event_type}: every schema version up to the newest needs a golden payload"
        );
        for (version, payload) in versions {
            let event: E = decode_event(event_type, *version, payload)
                .unwrap_or_else(|e| panic!("{event_type} v{version} no longer decodes: {e}"));
            assert_eq!(event.event_type(), *event_type);
            if *version == newest {
                assert_eq!(
                    event.schema_version(),
                    newest,
                    "{event_type}: the newest golden file is not the current schema version"
                );
                let encoded: Value = serde_json::from_str(&encode_event(&event).expect("encodes")).expect("JSON");
                let stored: Value = serde_json::from_str(payload).expect("golden JSON");
                assert_eq!(encoded, stored, "{event_type} v{version} does not round-trip");
            }
        }
    }
    E::EVENT_TYPES.iter().map(|t| t.to_string()).collect()
}

#[test]
fn every_stored_event_type_and_version_decodes_and_round_trips() {
    let files = golden_files();
    let mut covered: Vec<String> = Vec::new();
    for kind in AggregateKind::ALL {
        covered.extend(match kind {
            AggregateKind::LabRecord => check::<LabRecordEvent>(kind, &files),
            AggregateKind::LabletInstance => check::<LabletInstanceEvent>(kind, &files),
            AggregateKind::WorkOrder => check::<WorkOrderEvent>(kind, &files),
            AggregateKind::Worker => check::<WorkerEvent>(kind, &files),
            AggregateKind::InboxMessage => check::<InboxMessageEvent>(kind, &files),
            AggregateKind::LabletDefinition => check::<LabletDefinitionEvent>(kind, &files),
            AggregateKind::WorkerTemplate => check::<WorkerTemplateEvent>(kind, &files),
        });
    }
    let stray: Vec<&String> = files.keys().filter(|t| !covered.contains(t)).collect();
    assert!(
        stray.is_empty(),
        "golden files for event types no enum declares: {stray:?}"
    );
}
