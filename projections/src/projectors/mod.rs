//! The projectors of Lablet's read models, one per collection.

mod lab_records;
mod lablet_definitions;
mod lablet_instances;
#[cfg(test)]
mod tests;
mod work_orders;
mod worker_templates;
mod workers;

pub use lab_records::LabRecordsProjector;
pub use lablet_definitions::LabletDefinitionsProjector;
pub use lablet_instances::LabletInstancesProjector;
pub use work_orders::WorkOrdersProjector;
pub use worker_templates::WorkerTemplatesProjector;
pub use workers::WorkersProjector;

use crate::Projector;
use lablet_domain::AggregateKind;
use std::sync::Arc;

/// The projector of the read model that documents `kind`, if the kind has one.
pub fn projector_of(kind: AggregateKind) -> Option<Arc<dyn Projector>> {
    match kind {
        AggregateKind::LabRecord => Some(Arc::new(LabRecordsProjector)),
        AggregateKind::LabletInstance => Some(Arc::new(LabletInstancesProjector)),
        AggregateKind::WorkOrder => Some(Arc::new(WorkOrdersProjector)),
        AggregateKind::Worker => Some(Arc::new(WorkersProjector)),
        AggregateKind::InboxMessage => None,
        AggregateKind::LabletDefinition => Some(Arc::new(LabletDefinitionsProjector)),
        AggregateKind::WorkerTemplate => Some(Arc::new(WorkerTemplatesProjector)),
    }
}

/// Every projector `lablet serve` runs, one per kind that has a read model.
pub fn standard_projectors() -> Vec<Arc<dyn Projector>> {
    AggregateKind::ALL.into_iter().filter_map(projector_of).collect()
}
