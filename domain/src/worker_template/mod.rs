//! WorkerTemplate: what a worker is made from, stream `worker_template-<uuid>` (the UUIDv5 of
//! its name, so a name is one template).
//!
//! A template names the cloud instance type and image a worker boots, the capacity and license
//! such a worker declares, the ports it hands out, how long a drain may take, and what it costs
//! per hour. Templates are seeded from a YAML file at start (created if missing, never
//! overwritten) and changed or disabled by admins; the autoscaler picks among enabled ones.

mod aggregate;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{template_id, TemplateSpec, WorkerTemplate, WorkerTemplateCommand};
pub use events::{TemplateContent, WorkerTemplateEvent};
