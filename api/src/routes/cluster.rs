//! `GET /api/v1/cluster`: the replicas seen recently, and which replica holds each singleton
//! role (with its fencing token and expiry).

use super::AppState;
use crate::problem::{ApiResult, Problem};
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use lablet_application::ports::Clock;
use lablet_application::ports::{LeaseError, ReplicaSeen, SystemClock};
use lablet_application::AppError;
use serde::Serialize;

/// A replica is listed while it said it is alive within this many lease lifetimes.
const SEEN_WITHIN_TTLS: u32 = 3;

#[derive(Serialize, schemars::JsonSchema)]
pub struct ClusterView {
    /// The replica that answered.
    pub replica: String,
    pub replicas: Vec<ReplicaSeen>,
    pub leases: Vec<LeaseView>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct LeaseView {
    pub role: String,
    pub holder: String,
    pub token: u64,
    pub expires_at: DateTime<Utc>,
    /// Not expired: the holder runs the role now.
    pub held: bool,
}

fn unavailable(err: LeaseError) -> Problem {
    Problem::from(AppError::Unavailable(err.to_string()))
}

pub async fn view(State(state): State<AppState>) -> ApiResult<Json<ClusterView>> {
    let leadership = &state.leadership;
    let now = SystemClock.now();
    let window = chrono::Duration::from_std(leadership.settings().ttl * SEEN_WITHIN_TTLS).unwrap_or_default();
    let replicas = leadership.store().replicas(now - window).await.map_err(unavailable)?;
    let leases = leadership
        .store()
        .leases()
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|lease| LeaseView {
            held: lease.expires_at > now,
            role: lease.role,
            holder: lease.holder,
            token: lease.token,
            expires_at: lease.expires_at,
        })
        .collect();
    Ok(Json(ClusterView {
        replica: leadership.replica().to_owned(),
        replicas,
        leases,
    }))
}
