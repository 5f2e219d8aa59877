//! `lablet events`: the event log for auditors on the command line.

use lablet_application::audit::{digest_at, verify_log};
use lablet_application::ports::EventStore;
use std::io::Write;
use std::process::ExitCode;

/// Events read per round trip.
const PAGE: usize = 1000;

/// Writes the events of the log (or of one stream) with positions in `from..=to` to stdout as
/// JSON lines. Stops quietly when stdout is closed (for example by `head`).
pub async fn replay(
    store: &dyn EventStore,
    stream: Option<&str>,
    from: u64,
    to: Option<u64>,
) -> Result<ExitCode, String> {
    let to = to.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut next_version = 1;
    let mut after = from.saturating_sub(1);
    loop {
        let page = match stream {
            Some(stream) => store.read_stream(stream, next_version, PAGE).await,
            None => store.read_all(after, PAGE).await,
        }
        .map_err(|e| e.to_string())?;
        let done = page.len() < PAGE;
        for envelope in &page {
            next_version = envelope.version + 1;
            after = envelope.position;
            if envelope.position > to {
                return Ok(ExitCode::SUCCESS);
            }
            if envelope.position < from {
                continue;
            }
            let line = serde_json::to_string(envelope).map_err(|e| e.to_string())?;
            if writeln!(out, "{line}").is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if done {
            let _ = out.flush();
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// Walks every stream's hash chain; prints every broken link and fails if there is one.
pub async fn verify(store: &dyn EventStore) -> Result<ExitCode, String> {
    let head = store.head_position().await.map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let mut last_report = std::time::Instant::now();
    let report = verify_log(store, |position| {
        if last_report.elapsed().as_secs() >= 2 {
            eprintln!("verified up to position {position} of {head}");
            last_report = std::time::Instant::now();
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    if report.breaks.is_empty() {
        println!(
            "verified {} events in {} streams in {seconds:.1} s: every hash chain holds",
            report.events, report.streams
        );
        return Ok(ExitCode::SUCCESS);
    }
    for broken in &report.breaks {
        println!(
            "BROKEN: stream {} version {} (position {}): {}",
            broken.stream, broken.version, broken.position, broken.reason
        );
    }
    println!(
        "verified {} events in {} streams in {seconds:.1} s: {} links do not hold{}",
        report.events,
        report.streams,
        report.broken,
        if report.broken > report.breaks.len() as u64 {
            " (the first ones listed)"
        } else {
            ""
        }
    );
    Ok(ExitCode::FAILURE)
}

/// Prints the digest of all stream heads at a position.
pub async fn digest(store: &dyn EventStore, at: Option<u64>) -> Result<ExitCode, String> {
    let digest = digest_at(store, at).await.map_err(|e| e.to_string())?;
    println!(
        "position {} streams {} sha256 {}",
        digest.position, digest.streams, digest.sha256
    );
    Ok(ExitCode::SUCCESS)
}
