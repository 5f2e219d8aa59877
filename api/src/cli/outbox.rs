//! `lablet outbox`: the relays' progress and parked events, and redrive, on the command line.
//!
//! Both commands go through the mediator like the API. A redrive is a request: the relay of a
//! running `lablet serve` takes it up within a second and delivers the subject's parked events
//! in order.

use crate::app::build_mediator;
use lablet_application::outbox::{GetOutbox, RedriveParked};
use lablet_application::ports::SystemClock;
use lablet_application::progress::ProjectionProgress;
use lablet_application::{Mediator, RequestContext};
use lablet_infrastructure::stores::Stores;
use lablet_infrastructure::Settings;
use std::process::ExitCode;
use std::sync::Arc;
use uuid::Uuid;

fn mediator(settings: &Settings, stores: &Stores) -> Result<Mediator, String> {
    build_mediator(settings, stores, &ProjectionProgress::default(), Arc::new(SystemClock)).map_err(|e| e.to_string())
}

/// Prints each sink's checkpoint and lag, then the parked events, oldest first.
pub async fn parked(settings: &Settings, stores: &Stores, limit: usize) -> Result<ExitCode, String> {
    let overview = mediator(settings, stores)?
        .send(GetOutbox { limit }, &RequestContext::system())
        .await
        .map_err(|e| e.to_string())?;
    println!("head position {}", overview.head_position);
    println!("{:<8} {:>12} {:>10} {:>8}", "SINK", "CHECKPOINT", "LAG", "PARKED");
    for sink in &overview.sinks {
        println!(
            "{:<8} {:>12} {:>10} {:>8}",
            sink.sink, sink.checkpoint, sink.lag, sink.parked
        );
    }
    if overview.parked.is_empty() {
        println!("nothing parked");
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    println!(
        "{:<8} {:<36} {:>10} {:<36} {:<32} {:>8}  ERROR",
        "SINK", "EVENT", "POSITION", "SUBJECT", "TYPE", "ATTEMPTS"
    );
    for event in &overview.parked {
        let error = match event.held_behind {
            Some(head) => format!("held behind {head}"),
            None => event.last_error.clone(),
        };
        let requested = if event.redrive_requested_at.is_some() {
            " (redrive requested)"
        } else {
            ""
        };
        println!(
            "{:<8} {:<36} {:>10} {:<36} {:<32} {:>8}  {error}{requested}",
            event.sink, event.event_id, event.position, event.subject, event.event_type, event.attempts
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the relays to redrive one parked event (with its subject's earlier parked events) or all.
pub async fn redrive(settings: &Settings, stores: &Stores, event_id: Option<Uuid>) -> Result<ExitCode, String> {
    let marked = mediator(settings, stores)?
        .send(RedriveParked { event_id }, &RequestContext::system())
        .await
        .map_err(|e| e.to_string())?;
    println!("{marked} parked event(s) marked for redrive; a running relay delivers them within a second");
    Ok(ExitCode::SUCCESS)
}
