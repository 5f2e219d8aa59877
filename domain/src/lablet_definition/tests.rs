//! LabletDefinition: versions added pending, activated only by a matching sync (which
//! deprecates the version that was active), never reordered, deprecated and archived; and the
//! values a version is made of.

use super::*;
use crate::kernel::DomainError;
use crate::testing::given;
use crate::values::{FreeText, Name};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn spec(nodes: u32) -> VersionSpec {
    VersionSpec {
        artifact_uri: ArtifactUri::parse("https://artifacts.example.net/ospf.yaml").unwrap(),
        topology_sha256: Sha256Hex::parse(SHA).unwrap(),
        resources: Resources {
            cpu_cores: 4,
            memory_gb: 16,
            storage_gb: 20,
            nested_virtualization: false,
        },
        license_affinity: Vec::new(),
        node_count: NodeCount::parse(nodes).unwrap(),
        ports: vec![PortSpec {
            name: Name::parse("ssh").unwrap(),
            protocol: Protocol::Tcp,
        }],
        grading_rules_uri: None,
        max_duration_minutes: DEFAULT_MAX_DURATION,
        warm_pool_depth: WarmPoolDepth::parse(0).unwrap(),
    }
}

fn v(text: &str) -> SemVer {
    SemVer::parse(text).unwrap()
}

fn create(version: &str) -> LabletDefinitionCommand {
    LabletDefinitionCommand::Create {
        name: Name::parse("ospf-basics").unwrap(),
        version: v(version),
        spec: spec(3),
    }
}

fn fetched(version: &str, sha: &str, nodes: u32) -> LabletDefinitionCommand {
    LabletDefinitionCommand::RecordSync {
        version: v(version),
        outcome: SyncOutcome::Fetched {
            sha256: sha.into(),
            node_count: nodes,
        },
    }
}

fn status(definition: &LabletDefinition, version: &str) -> VersionStatus {
    definition.versions[&v(version)].status
}

#[test]
fn a_version_is_active_only_once_its_artifact_matched() {
    let (scenario, events) = given::<LabletDefinition>([]).when(create("1.0.0")).events();
    assert_eq!(events.len(), 2, "created, and its first version added");
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::PendingSync);

    let (scenario, events) = scenario.when(fetched("1.0.0", &"0".repeat(64), 3)).events();
    assert!(
        matches!(&events[..], [LabletDefinitionEvent::VersionSyncFailed { reason, .. }] if reason.contains("SHA-256")),
        "{events:?}"
    );
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::PendingSync);
    let (scenario, again) = scenario.when(fetched("1.0.0", &"0".repeat(64), 3)).events();
    assert!(again.is_empty(), "the same failure is not recorded twice");

    let (scenario, events) = scenario.when(fetched("1.0.0", SHA, 4)).events();
    assert!(
        matches!(&events[..], [LabletDefinitionEvent::VersionSyncFailed { reason, .. }] if reason.contains("4 nodes")),
        "{events:?}"
    );
    let (scenario, events) = scenario.when(fetched("1.0.0", SHA, 3)).events();
    assert!(matches!(&events[..], [LabletDefinitionEvent::VersionActivated { .. }]));
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::Active);
    assert_eq!(scenario.state().versions[&v("1.0.0")].sync_error, None);
    let (_, events) = scenario.when(fetched("1.0.0", SHA, 3)).events();
    assert!(events.is_empty(), "an active version synced again changes nothing");
}

#[test]
fn the_next_version_going_active_deprecates_the_previous_one() {
    let scenario = given::<LabletDefinition>([]).after([
        create("1.0.0"),
        fetched("1.0.0", SHA, 3),
        LabletDefinitionCommand::AddVersion {
            version: v("1.1.0"),
            spec: spec(3),
        },
    ]);
    assert_eq!(
        status(scenario.state(), "1.0.0"),
        VersionStatus::Active,
        "until 1.1.0 syncs"
    );
    let (scenario, events) = scenario.when(fetched("1.1.0", SHA, 3)).events();
    assert!(matches!(
        &events[..],
        [
            LabletDefinitionEvent::VersionActivated { .. },
            LabletDefinitionEvent::VersionDeprecated { .. }
        ]
    ));
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::Deprecated);
    assert_eq!(
        scenario.state().active_version().map(|(v, _)| v.to_string()),
        Some("1.1.0".into())
    );
}

#[test]
fn an_older_version_synced_after_a_newer_one_went_active_never_takes_instances() {
    let scenario = given::<LabletDefinition>([]).after([
        create("1.0.0"),
        LabletDefinitionCommand::AddVersion {
            version: v("2.0.0"),
            spec: spec(3),
        },
        fetched("2.0.0", SHA, 3),
        fetched("1.0.0", SHA, 3),
    ]);
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::Deprecated);
    assert_eq!(status(scenario.state(), "2.0.0"), VersionStatus::Active);
}

#[test]
fn versions_only_go_forward_and_a_name_is_created_once() {
    let scenario = given::<LabletDefinition>([]).after([create("1.2.0")]);
    let refused = scenario.when(LabletDefinitionCommand::AddVersion {
        version: v("1.2.0-rc.1"),
        spec: spec(3),
    });
    assert!(matches!(refused.decided_error(), Some(DomainError::RuleViolated(m)) if m.contains("not after 1.2.0")));
    given::<LabletDefinition>([])
        .after([create("1.0.0")])
        .when(create("2.0.0"))
        .then_error(DomainError::AlreadyExists {
            aggregate: "lablet_definition",
        });
}

#[test]
fn an_active_version_is_deprecated_before_it_is_archived() {
    let scenario = given::<LabletDefinition>([]).after([create("1.0.0"), fetched("1.0.0", SHA, 3)]);
    let refused = scenario.when(LabletDefinitionCommand::Archive { version: v("1.0.0") });
    assert!(matches!(refused.decided_error(), Some(DomainError::RuleViolated(m)) if m.contains("deprecate it")));
    let scenario = given::<LabletDefinition>([]).after([
        create("1.0.0"),
        fetched("1.0.0", SHA, 3),
        LabletDefinitionCommand::Deprecate {
            version: v("1.0.0"),
            reason: FreeText::parse("replaced by the new exam").unwrap(),
        },
        LabletDefinitionCommand::Archive { version: v("1.0.0") },
    ]);
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::Archived);
    assert!(scenario.state().active_version().is_none());
    scenario
        .when(fetched("1.0.0", SHA, 3))
        .then_error(DomainError::InvalidTransition {
            aggregate: "lablet_definition",
            from: "1.0.0 archived".into(),
            to: "active".into(),
        });
}

#[test]
fn semantic_versions_parse_strictly_and_order_pre_releases_first() {
    for bad in [
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.2.x",
        "1.2.3-",
        "1.2.3-a..b",
        "v1.2.3",
        "",
    ] {
        assert!(SemVer::parse(bad).is_err(), "{bad}");
    }
    assert!(v("1.2.3-rc.1") < v("1.2.3"));
    assert!(v("1.10.0") > v("1.9.9"));
    assert_eq!(v("2.0.0-beta.2").to_string(), "2.0.0-beta.2");
}

#[test]
fn artifact_uris_and_digests_are_checked() {
    for good in [
        "https://a.example/x.yaml",
        "file:///srv/labs/x.yaml",
        "s3://bucket/x.yaml",
        "http://127.0.0.1:8080/x",
    ] {
        assert!(ArtifactUri::parse(good).is_ok(), "{good}");
    }
    for bad in ["ftp://a/x", "https://", "s3://", "/srv/x.yaml", "https://a b"] {
        assert!(ArtifactUri::parse(bad).is_err(), "{bad}");
    }
    assert!(Sha256Hex::parse(SHA).is_ok());
    assert!(Sha256Hex::parse(SHA.to_uppercase()).is_err());
    assert!(Sha256Hex::parse("abc").is_err());
}

#[test]
fn definition_ids_follow_the_name() {
    assert_eq!(definition_id("ospf-basics"), definition_id("ospf-basics"));
    assert_ne!(definition_id("ospf-basics"), definition_id("bgp-basics"));
}

#[test]
fn an_active_version_is_taken_out_of_service_and_back() {
    let scenario = given::<LabletDefinition>([]).after([
        create("1.0.0"),
        fetched("1.0.0", SHA, 3),
        LabletDefinitionCommand::Deactivate { version: v("1.0.0") },
    ]);
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::Inactive);
    assert!(scenario.state().active_version().is_none());
    let (scenario, _) = scenario
        .when(LabletDefinitionCommand::Reactivate { version: v("1.0.0") })
        .events();
    assert_eq!(status(scenario.state(), "1.0.0"), VersionStatus::Active);
    let pending = given::<LabletDefinition>([]).after([create("1.0.0")]);
    assert!(pending
        .when(LabletDefinitionCommand::Deactivate { version: v("1.0.0") })
        .decided_error()
        .is_some());
    let two = given::<LabletDefinition>([]).after([
        create("1.0.0"),
        fetched("1.0.0", SHA, 3),
        LabletDefinitionCommand::Deactivate { version: v("1.0.0") },
        LabletDefinitionCommand::AddVersion {
            version: v("1.1.0"),
            spec: spec(3),
        },
        fetched("1.1.0", SHA, 3),
    ]);
    let refused = two.when(LabletDefinitionCommand::Reactivate { version: v("1.0.0") });
    assert!(matches!(refused.decided_error(), Some(DomainError::RuleViolated(m)) if m.contains("one active version")));
}
