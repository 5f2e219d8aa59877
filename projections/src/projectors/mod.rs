//! The projectors of Lablet's read models, one per collection.

mod lab_records;
mod lablet_instances;
mod work_orders;
mod workers;

pub use lab_records::LabRecordsProjector;
pub use lablet_instances::LabletInstancesProjector;
pub use work_orders::WorkOrdersProjector;
pub use workers::WorkersProjector;

use crate::Projector;
use std::sync::Arc;

/// Every projector `lablet serve` runs.
pub fn standard_projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(LabRecordsProjector),
        Arc::new(LabletInstancesProjector),
        Arc::new(WorkOrdersProjector),
        Arc::new(WorkersProjector),
    ]
}
