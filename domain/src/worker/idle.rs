//! Idle detection: which telemetry counts as activity, and when a worker counts as idle.
//!
//! A worker is idle when detection is on, it is running, nothing counted as activity for longer
//! than the timeout, and it is outside the snooze that follows a resume (a worker just started
//! again gets time to be used before it is called idle again).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Users whose ids start with this are CML's own automation, not people.
pub const AUTOMATED_USER_PREFIX: &str = "00000000-0000-";

/// How many recent activities a worker keeps.
pub const RECENT_ACTIVITY_LIMIT: usize = 10;

/// Telemetry categories that are a person acting on labs or nodes.
const ACTIVITY_CATEGORIES: [&str; 10] = [
    "start_lab",
    "stop_lab",
    "queue_node",
    "stop_node",
    "start_node",
    "boot_node",
    "wipe_node",
    "import_lab",
    "export_lab",
    "user_activity",
];

/// Whether a telemetry event of `category` by `user_id` counts as activity.
pub fn counts_as_activity(category: &str, user_id: Option<&str>) -> bool {
    let automated = user_id.is_some_and(|id| id.starts_with(AUTOMATED_USER_PREFIX));
    ACTIVITY_CATEGORIES.contains(&category) && !automated
}

/// The thresholds of idle detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    pub timeout: Duration,
    pub snooze_after_resume: Duration,
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy {
            timeout: Duration::minutes(60),
            snooze_after_resume: Duration::minutes(60),
        }
    }
}

/// A worker's idleness at one moment, as `GET /workers/{id}/idle-status` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IdleStatus {
    pub idle: bool,
    /// Why the worker is or is not idle, in words.
    pub reason: String,
    pub idle_detection_enabled: bool,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Since when nothing counted as activity (last activity, resume or registration).
    pub quiet_since: Option<DateTime<Utc>>,
    pub idle_minutes: i64,
    pub timeout_minutes: i64,
    /// The end of the snooze after the last resume, if it has not passed.
    pub snoozed_until: Option<DateTime<Utc>>,
}
