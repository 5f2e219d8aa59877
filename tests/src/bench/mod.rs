//! Pieces of the benchmark command (`lablet-bench`): latency statistics, memory readings, and
//! the raw SQLite baseline.

pub mod baseline;
pub mod postgres_baseline;
pub mod stats;
