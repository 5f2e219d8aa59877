//! `lablet projections rebuild <name>|--all [--verify]`: replays the log into a fresh
//! read-model file beside the live one while the live projection keeps serving, then either
//! swaps the rebuilt read model in atomically once it has caught up, or, with `--verify`,
//! reports every document that differs and changes nothing.

use indicatif::{ProgressBar, ProgressStyle};
use lablet_application::ports::{IdSource, UuidV7Ids};
use lablet_application::ports::{ListQuery, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_infrastructure::config::StoreLocation;
use lablet_infrastructure::sqlite::{SqliteReadModelStore, SwapOutcome};
use lablet_infrastructure::stores::Stores;
use lablet_infrastructure::Settings;
use lablet_migrations::sqlite::{migrate_file, READ_MODELS};
use lablet_projections::{standard_projectors, ProjectionRunner, Projector};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Documents compared per page.
const PAGE: usize = 200;
/// Catch-up rounds a swap may take before it gives up (the log grows faster than the rebuild).
const SWAP_ROUNDS: usize = 20;

/// Rebuilds `names` (all projections when empty) into a scratch file in the data directory;
/// swaps each one in, or with `verify` compares it with the live one.
pub async fn rebuild(stores: &Stores, settings: &Settings, names: &[String], verify: bool) -> Result<ExitCode, String> {
    let projectors = chosen(names)?;
    let live =
        match (&settings.read_models, verify) {
            (StoreLocation::Sqlite(path), false) => Some(SqliteReadModelStore::open(path).map_err(|e| e.to_string())?),
            (_, true) => None,
            (StoreLocation::Postgres(_) | StoreLocation::Mongo(_) | StoreLocation::Kurrent(_), false) => return Err(
                "swapping a rebuilt read model in is built for SQLite read models only; elsewhere, --verify compares a rebuild with the live read model"
                    .into(),
            ),
        };
    let scratch = Scratch::create(&settings.data_dir)?;
    let mut differing = 0;
    for projector in projectors {
        let name = projector.collection().name;
        let runner = ProjectionRunner::new(
            stores.events.clone(),
            scratch.store.clone(),
            projector,
            ProjectionProgress::default(),
        );
        let (read, seconds) = replay(&runner, stores).await?;
        let rate = read as f64 / seconds.max(1e-9);
        match &live {
            Some(live) => {
                let (position, generation, documents) = swap(live, &runner, &scratch.path, name).await?;
                eprintln!(
                    "{name}: replayed {read} events in {seconds:.1} s ({rate:.0} events/s); swapped in {documents} documents at position {position} (generation {generation})"
                );
            }
            None => {
                let (compared, differences) =
                    compare(stores.read_models.as_ref(), scratch.store.as_ref(), name).await?;
                eprintln!(
                    "{name}: replayed {read} events in {seconds:.1} s ({rate:.0} events/s); compared {compared} documents, {} differ",
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

/// A read-model file of its own for the rebuild, deleted when dropped.
struct Scratch {
    path: PathBuf,
    store: Arc<dyn ReadModelStore>,
}

impl Scratch {
    fn create(data_dir: &Path) -> Result<Scratch, String> {
        let path = data_dir.join(format!("rebuild-{}.db", UuidV7Ids.new_id()));
        migrate_file(&path, READ_MODELS).map_err(|e| e.to_string())?;
        let store = Arc::new(SqliteReadModelStore::open(&path).map_err(|e| e.to_string())?);
        Ok(Scratch { path, store })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

/// Replays the whole log into the runner's (scratch) store behind a progress bar; answers the
/// events read and the seconds it took.
async fn replay(runner: &ProjectionRunner, stores: &Stores) -> Result<(u64, f64), String> {
    let name = runner.name();
    let head = stores.events.head_position().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let bar = progress_bar(name, head);
    let ticker = tokio::spawn(follow_progress(bar.clone(), runner.progress(), name, started));
    let read = runner.catch_up().await.map_err(|e| e.to_string());
    ticker.abort();
    bar.finish_and_clear();
    Ok((read?, started.elapsed().as_secs_f64()))
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

/// Catches the rebuilt projection up with the log and swaps it in; retries while the live
/// projection is ahead of it. Answers the position, generation and documents swapped in.
async fn swap(
    live: &SqliteReadModelStore,
    runner: &ProjectionRunner,
    scratch: &Path,
    name: &'static str,
) -> Result<(u64, u64, u64), String> {
    for _ in 0..SWAP_ROUNDS {
        runner.catch_up().await.map_err(|e| e.to_string())?;
        match live.swap_in(name, scratch).await.map_err(|e| e.to_string())? {
            SwapOutcome::Swapped {
                position,
                generation,
                documents,
            } => return Ok((position, generation, documents)),
            SwapOutcome::Behind { .. } => tokio::time::sleep(Duration::from_millis(20)).await,
            SwapOutcome::NothingRebuilt => {
                return Err(format!("{name}: the rebuild committed nothing; is the log empty?"))
            }
        }
    }
    Err(format!(
        "{name}: the live projection stayed ahead of the rebuild for {SWAP_ROUNDS} rounds; nothing was swapped"
    ))
}

/// One page of documents (with history) after `after`, parsed.
async fn page(
    store: &dyn ReadModelStore,
    collection: &'static str,
    after: Option<String>,
) -> Result<(Vec<(String, Value)>, Option<String>), String> {
    let query = ListQuery {
        filters: Vec::new(),
        limit: PAGE,
        after_id: after,
        include_history: true,
    };
    let page = store.list(collection, &query).await.map_err(|e| e.to_string())?;
    let mut documents = Vec::with_capacity(page.items.len());
    for raw in page.items {
        let document: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
        let id = document["id"].as_str().unwrap_or_default().to_owned();
        documents.push((id, document));
    }
    Ok((documents, page.next_cursor))
}

/// Walks both collections in id order; answers how many documents were compared and the ids
/// that differ or exist on one side only.
async fn compare(
    live: &dyn ReadModelStore,
    rebuilt: &dyn ReadModelStore,
    collection: &'static str,
) -> Result<(u64, Vec<String>), String> {
    let (mut a, mut a_next) = page(live, collection, None).await?;
    let (mut b, mut b_next) = page(rebuilt, collection, None).await?;
    a.reverse();
    b.reverse();
    let (mut compared, mut differing) = (0, Vec::new());
    loop {
        if a.is_empty() {
            if let Some(after) = a_next.take() {
                (a, a_next) = page(live, collection, Some(after)).await?;
                a.reverse();
            }
        }
        if b.is_empty() {
            if let Some(after) = b_next.take() {
                (b, b_next) = page(rebuilt, collection, Some(after)).await?;
                b.reverse();
            }
        }
        let next = match (a.last(), b.last()) {
            (None, None) => break,
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        compared += 1;
        match next {
            std::cmp::Ordering::Equal => {
                let (x, y) = (a.pop(), b.pop());
                if let (Some(x), Some(y)) = (x, y) {
                    if x.1 != y.1 {
                        differing.push(x.0);
                    }
                }
            }
            // Only on one side: missing from the other.
            std::cmp::Ordering::Less => differing.extend(a.pop().map(|d| d.0)),
            std::cmp::Ordering::Greater => differing.extend(b.pop().map(|d| d.0)),
        }
    }
    Ok((compared, differing))
}
