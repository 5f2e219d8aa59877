//! WorkerTemplate state, decisions and the fold of its events.

use super::events::{TemplateContent, WorkerTemplateEvent};
use crate::kernel::{Aggregate, Command, DecisionContext, DomainError};
use crate::values::{Bounded, Name};
use crate::worker::{Capacity, LicenseType, PortRange};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The namespace of template ids: a template's id is the UUIDv5 of its name.
const TEMPLATE_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_626c_6574_2d77_6f72_6b65_722d_746d);

/// The id of the template named `name`.
pub fn template_id(name: &str) -> Uuid {
    Uuid::new_v5(&TEMPLATE_NAMESPACE, name.as_bytes())
}

/// A template's content, every value checked (also the body the API and the seed file read).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub instance_type: Name<64>,
    pub image_pattern: Name<256>,
    pub declared_capacity: Capacity,
    pub license_type: LicenseType,
    /// 2000–9999 when absent.
    #[serde(default)]
    pub port_range: PortRange,
    /// 1–1440 minutes; 60 when absent.
    #[serde(default = "default_drain")]
    pub drain_timeout_minutes: Bounded<1, 1440>,
    /// US dollars per hour, 0 or more.
    pub hourly_cost: f64,
    #[serde(default)]
    pub region: Option<Name<64>>,
}

fn default_drain() -> Bounded<1, 1440> {
    Bounded::new_const(60)
}

impl TemplateSpec {
    /// What the types cannot say: a cost that is a number, and a port range that is one.
    fn check(&self) -> Result<(), DomainError> {
        if !self.hourly_cost.is_finite() || self.hourly_cost < 0.0 {
            return Err(DomainError::InvalidValue {
                field: "hourly_cost",
                message: "must be a number, 0 or more".into(),
            });
        }
        if self.port_range.is_empty() || self.port_range.first < 1024 {
            return Err(DomainError::InvalidValue {
                field: "port_range",
                message: "must run from `first` to a `last` not below it, above 1023".into(),
            });
        }
        Ok(())
    }

    fn content(&self) -> TemplateContent {
        TemplateContent {
            instance_type: self.instance_type.to_string(),
            image_pattern: self.image_pattern.to_string(),
            declared_capacity: self.declared_capacity,
            license_type: self.license_type,
            port_range: self.port_range,
            drain_timeout_minutes: self.drain_timeout_minutes.get(),
            hourly_cost: self.hourly_cost,
            region: self.region.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkerTemplateCommand {
    /// A new template (refused if the name exists).
    Define {
        name: Name<128>,
        spec: TemplateSpec,
    },
    /// New content for an existing template.
    Change(TemplateSpec),
    Enable,
    Disable,
}

impl Command for WorkerTemplateCommand {
    fn name(&self) -> &'static str {
        match self {
            WorkerTemplateCommand::Define { .. } => "worker_template.define",
            WorkerTemplateCommand::Change(_) => "worker_template.change",
            WorkerTemplateCommand::Enable => "worker_template.enable",
            WorkerTemplateCommand::Disable => "worker_template.disable",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkerTemplate {
    pub exists: bool,
    pub name: String,
    pub content: Option<TemplateContent>,
    pub enabled: bool,
}

impl Aggregate for WorkerTemplate {
    const KIND: crate::AggregateKind = crate::AggregateKind::WorkerTemplate;
    type Event = WorkerTemplateEvent;
    type Command = WorkerTemplateCommand;

    fn decide(
        &self,
        command: &WorkerTemplateCommand,
        context: &DecisionContext,
    ) -> Result<Vec<WorkerTemplateEvent>, DomainError> {
        let (by, at) = (context.actor.clone(), context.now);
        if let WorkerTemplateCommand::Define { name, spec } = command {
            if self.exists {
                return Err(DomainError::AlreadyExists {
                    aggregate: Self::KIND.name(),
                });
            }
            spec.check()?;
            return Ok(vec![WorkerTemplateEvent::Defined {
                name: name.to_string(),
                content: spec.content(),
                enabled: true,
                defined_by: by,
                defined_at: at,
            }]);
        }
        if !self.exists {
            return Err(DomainError::NotFound {
                aggregate: Self::KIND.name(),
            });
        }
        Ok(match command {
            WorkerTemplateCommand::Define { .. } => unreachable!("decided above"),
            WorkerTemplateCommand::Change(spec) => {
                spec.check()?;
                let content = spec.content();
                if self.content.as_ref() == Some(&content) {
                    return Ok(Vec::new());
                }
                vec![WorkerTemplateEvent::Changed {
                    content,
                    changed_by: by,
                    changed_at: at,
                }]
            }
            WorkerTemplateCommand::Enable if !self.enabled => vec![WorkerTemplateEvent::Enabled { by, at }],
            WorkerTemplateCommand::Disable if self.enabled => vec![WorkerTemplateEvent::Disabled { by, at }],
            WorkerTemplateCommand::Enable | WorkerTemplateCommand::Disable => Vec::new(),
        })
    }

    fn apply(&mut self, event: &WorkerTemplateEvent) {
        match event {
            WorkerTemplateEvent::Defined {
                name, content, enabled, ..
            } => {
                self.exists = true;
                self.name = name.clone();
                self.content = Some(content.clone());
                self.enabled = *enabled;
            }
            WorkerTemplateEvent::Changed { content, .. } => self.content = Some(content.clone()),
            WorkerTemplateEvent::Enabled { .. } => self.enabled = true,
            WorkerTemplateEvent::Disabled { .. } => self.enabled = false,
        }
    }
}
