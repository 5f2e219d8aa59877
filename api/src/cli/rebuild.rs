//! `lablet projections rebuild <name>|--all [--verify]`: replays the log into a staging area
//! beside the live read models (on any read-model store) while the live projection keeps
//! serving, then either swaps the rebuilt read model in atomically once it has caught up, or,
//! with `--verify`, reports every document that differs and changes nothing. The rebuild
//! itself is [`lablet_projections::Rebuild`]; this module draws its progress.

use indicatif::{ProgressBar, ProgressStyle};
use lablet_application::progress::ProjectionProgress;
use lablet_infrastructure::stores::Stores;
use lablet_projections::{standard_projectors, Finish, Projector, Rebuild, RebuildOutcome};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rebuilds `names` (all projections when empty); swaps each one in, or with `verify`
/// compares it with the live one.
pub async fn rebuild(stores: &Stores, names: &[String], verify: bool) -> Result<ExitCode, String> {
    let projectors = chosen(names)?;
    let rebuild = Rebuild::new(
        stores.events.clone(),
        stores.read_models.clone(),
        stores.rebuilds.clone(),
    );
    let finish = if verify { Finish::Verify } else { Finish::Swap };
    let mut differing = 0;
    for projector in projectors {
        let name = projector.collection().name;
        let head = stores.events.head_position().await.map_err(|e| e.to_string())?;
        let progress = ProjectionProgress::default();
        let bar = progress_bar(name, head);
        let ticker = tokio::spawn(follow_progress(bar.clone(), progress.clone(), name, Instant::now()));
        let outcome = rebuild.run(projector, finish, progress).await;
        ticker.abort();
        bar.finish_and_clear();
        match outcome.map_err(|e| e.to_string())? {
            RebuildOutcome::Swapped {
                replayed,
                position,
                generation,
                documents,
            } => eprintln!(
                "{name}: replayed {} events in {:.1} s ({:.0} events/s); swapped in {documents} documents at position {position} (generation {generation})",
                replayed.events,
                replayed.seconds,
                replayed.rate(),
            ),
            RebuildOutcome::Compared {
                replayed,
                compared,
                differing: differences,
            } => {
                eprintln!(
                    "{name}: replayed {} events in {:.1} s ({:.0} events/s); compared {compared} documents, {} differ",
                    replayed.events,
                    replayed.seconds,
                    replayed.rate(),
                    differences.len()
                );
                for id in &differences {
                    println!("{name} {id} differs from a rebuild");
                }
                differing += differences.len();
            }
        }
    }
    Ok(if differing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The projectors named, or all of them.
fn chosen(names: &[String]) -> Result<Vec<Arc<dyn Projector>>, String> {
    if names.is_empty() {
        return Ok(standard_projectors());
    }
    let projectors: Vec<_> = standard_projectors()
        .into_iter()
        .filter(|p| names.iter().any(|n| n == p.collection().name))
        .collect();
    if projectors.len() != names.len() {
        let known: Vec<_> = standard_projectors().iter().map(|p| p.collection().name).collect();
        return Err(format!(
            "unknown projection among {names:?}; known: {}",
            known.join(", ")
        ));
    }
    Ok(projectors)
}

fn progress_bar(name: &str, head: u64) -> ProgressBar {
    let bar = ProgressBar::new(head);
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] position {pos}/{len}, ETA {eta}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(name.to_owned());
    bar
}

/// Moves the bar with the projection's applied position; where no bar can be drawn (stderr is
/// not a terminal) prints a line every five seconds instead.
async fn follow_progress(bar: ProgressBar, progress: ProjectionProgress, name: &'static str, started: Instant) {
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let position = progress.applied(name).position;
        bar.set_position(position);
        ticks += 1;
        if bar.is_hidden() && ticks.is_multiple_of(50) {
            let head = bar.length().unwrap_or(0);
            let rate = position as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let eta = if rate > 0.0 {
                head.saturating_sub(position) as f64 / rate
            } else {
                f64::INFINITY
            };
            eprintln!("{name}: position {position}/{head}, about {eta:.0} s left");
        }
    }
}
