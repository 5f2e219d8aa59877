//! `lablet projections rebuild <name>|--all --verify`: replays the log into a fresh read-model
//! file beside the live one and reports every document that differs. Only the verifying
//! rebuild exists: nothing is swapped in.

use lablet_application::ports::{ListQuery, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_infrastructure::sqlite::SqliteReadModelStore;
use lablet_infrastructure::stores::Stores;
use lablet_migrations::sqlite::{migrate_file, READ_MODELS};
use lablet_projections::{standard_projectors, ProjectionRunner};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Documents compared per page.
const PAGE: usize = 200;

/// Rebuilds `names` into a scratch file in `data_dir` and compares them with the live ones.
pub async fn verify(stores: &Stores, data_dir: &Path, names: &[String]) -> Result<ExitCode, String> {
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
    let scratch = data_dir.join(format!("rebuild-{}.db", uuid::Uuid::now_v7()));
    migrate_file(&scratch, READ_MODELS).map_err(|e| e.to_string())?;
    let rebuilt: Arc<dyn ReadModelStore> = Arc::new(SqliteReadModelStore::open(&scratch).map_err(|e| e.to_string())?);
    let result = async {
        let head = stores.events.head_position().await.map_err(|e| e.to_string())?;
        let mut differing = 0;
        for projector in projectors {
            let name = projector.collection().name;
            let progress = ProjectionProgress::default();
            let runner = ProjectionRunner::new(stores.events.clone(), rebuilt.clone(), projector, progress.clone());
            let started = Instant::now();
            let reporter = tokio::spawn(report_progress(name, progress, head, started));
            let read = runner.catch_up().await.map_err(|e| e.to_string());
            reporter.abort();
            let read = read?;
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            let (compared, differences) = compare(stores.read_models.as_ref(), rebuilt.as_ref(), name).await?;
            eprintln!(
                "{name}: replayed {read} events in {seconds:.1} s ({:.0} events/s); compared {compared} documents, {} differ",
                read as f64 / seconds,
                differences.len()
            );
            for id in &differences {
                println!("{name} {id} differs from a rebuild");
            }
            differing += differences.len();
        }
        Ok::<_, String>(differing)
    }
    .await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
    }
    Ok(if result? == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints events/s and the time left every second until aborted.
async fn report_progress(name: &'static str, progress: ProjectionProgress, head: u64, started: Instant) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let position = progress.applied(name).position;
        let rate = position as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let eta = if rate > 0.0 {
            (head.saturating_sub(position)) as f64 / rate
        } else {
            f64::INFINITY
        };
        eprintln!(
            "{name}: {position}/{head} ({:.0} %), {rate:.0} events/s, about {eta:.0} s left",
            position as f64 * 100.0 / head.max(1) as f64
        );
    }
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
