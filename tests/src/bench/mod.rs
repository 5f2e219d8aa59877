//! Pieces of the benchmark commands (`lablet-bench`, `lablet-placement-bench`): latency
//! statistics, memory readings, the raw SQLite baseline, and the placement inputs and peers.

pub mod baseline;
pub mod durable_placement;
pub mod placement;
pub mod postgres_baseline;
pub mod stats;
pub mod work_orders;
