//! WorkerTemplate: defined once per name, changed only when the content differs, enabled and
//! disabled; costs and port ranges that make no sense are refused.

use super::*;
use crate::kernel::DomainError;
use crate::testing::given;
use crate::values::Name;
use crate::worker::{LicenseType, PortRange};

fn spec(cost: f64) -> TemplateSpec {
    serde_json::from_value(serde_json::json!({
        "instance_type": "m5zn.metal",
        "image_pattern": "cml-2.9-*",
        "declared_capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 1000, "max_nodes": 120},
        "license_type": "enterprise",
        "hourly_cost": cost
    }))
    .unwrap()
}

fn define(cost: f64) -> WorkerTemplateCommand {
    WorkerTemplateCommand::Define {
        name: Name::parse("metal-large").unwrap(),
        spec: spec(cost),
    }
}

#[test]
fn a_template_is_defined_once_with_its_defaults() {
    let (scenario, events) = given::<WorkerTemplate>([]).when(define(3.96)).events();
    let [WorkerTemplateEvent::Defined { content, enabled, .. }] = &events[..] else {
        panic!("{events:?}");
    };
    assert!(*enabled);
    assert_eq!(
        content.port_range,
        PortRange {
            first: 2000,
            last: 9999
        }
    );
    assert_eq!(content.drain_timeout_minutes, 60);
    assert_eq!(content.license_type, LicenseType::Enterprise);
    scenario.when(define(1.0)).then_error(DomainError::AlreadyExists {
        aggregate: "worker_template",
    });
}

#[test]
fn a_change_is_recorded_only_when_something_differs() {
    let scenario = given::<WorkerTemplate>([]).after([define(3.96)]);
    let (scenario, same) = scenario.when(WorkerTemplateCommand::Change(spec(3.96))).events();
    assert!(same.is_empty());
    let (scenario, changed) = scenario.when(WorkerTemplateCommand::Change(spec(4.5))).events();
    assert_eq!(changed.len(), 1);
    assert_eq!(scenario.state().content.as_ref().map(|c| c.hourly_cost), Some(4.5));
    let (scenario, disabled) = scenario.when(WorkerTemplateCommand::Disable).events();
    assert_eq!(disabled.len(), 1);
    assert!(!scenario.state().enabled);
    let (scenario, again) = scenario.when(WorkerTemplateCommand::Disable).events();
    assert!(again.is_empty());
    let (scenario, _) = scenario.when(WorkerTemplateCommand::Enable).events();
    assert!(scenario.state().enabled);
}

#[test]
fn nonsense_costs_and_port_ranges_are_refused() {
    let negative = given::<WorkerTemplate>([]).when(define(-1.0));
    assert!(matches!(
        negative.decided_error(),
        Some(DomainError::InvalidValue {
            field: "hourly_cost",
            ..
        })
    ));
    let mut backwards = spec(1.0);
    backwards.port_range = PortRange {
        first: 3000,
        last: 2999,
    };
    let refused = given::<WorkerTemplate>([]).when(WorkerTemplateCommand::Define {
        name: Name::parse("x").unwrap(),
        spec: backwards,
    });
    assert!(matches!(
        refused.decided_error(),
        Some(DomainError::InvalidValue {
            field: "port_range",
            ..
        })
    ));
    given::<WorkerTemplate>([])
        .when(WorkerTemplateCommand::Disable)
        .then_error(DomainError::NotFound {
            aggregate: "worker_template",
        });
}

#[test]
fn template_ids_follow_the_name() {
    assert_eq!(template_id("metal-large"), template_id("metal-large"));
    assert_ne!(template_id("metal-large"), template_id("metal-small"));
}
