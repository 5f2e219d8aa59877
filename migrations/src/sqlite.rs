//! SQLite migrations: the event log file and the read-model file.

use lablet_application::ports::{Clock, SystemClock};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const APPLIED: &str = include_str!("sql/sqlite_applied.sql");
const CREATE_MIGRATIONS: &str = include_str!("sql/sqlite_create_migrations.sql");
const RECORD_APPLIED: &str = include_str!("sql/sqlite_record_applied.sql");

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const EVENT_STORE: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../sql/sqlite/event_store_0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "stream_index",
        sql: include_str!("../sql/sqlite/event_store_0002_stream_index.sql"),
    },
];

pub const READ_MODELS: &[Migration] = &[
    Migration {
        version: 1,
        name: "collections",
        sql: include_str!("../sql/sqlite/read_models_0001_collections.sql"),
    },
    Migration {
        version: 2,
        name: "projection_errors",
        sql: include_str!("../sql/sqlite/read_models_0002_projection_errors.sql"),
    },
    Migration {
        version: 3,
        name: "outbox",
        sql: include_str!("../sql/sqlite/read_models_0003_outbox.sql"),
    },
    Migration {
        version: 4,
        name: "generations",
        sql: include_str!("../sql/sqlite/read_models_0004_generations.sql"),
    },
    Migration {
        version: 5,
        name: "api_keys",
        sql: include_str!("../sql/sqlite/read_models_0005_api_keys.sql"),
    },
    Migration {
        version: 6,
        name: "sealed_secrets",
        sql: include_str!("../sql/sqlite/read_models_0006_sealed_secrets.sql"),
    },
    Migration {
        version: 7,
        name: "workers",
        sql: include_str!("../sql/sqlite/read_models_0007_workers.sql"),
    },
    Migration {
        version: 8,
        name: "outbox_delivered",
        sql: include_str!("../sql/sqlite/read_models_0008_outbox_delivered.sql"),
    },
    Migration {
        version: 9,
        name: "leases",
        sql: include_str!("../sql/sqlite/read_models_0009_leases.sql"),
    },
    Migration {
        version: 10,
        name: "lablet_definitions",
        sql: include_str!("../sql/sqlite/read_models_0010_lablet_definitions.sql"),
    },
    Migration {
        version: 11,
        name: "worker_templates",
        sql: include_str!("../sql/sqlite/read_models_0011_worker_templates.sql"),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum SqliteMigrationError {
    #[error("cannot create the directory of {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("migration {version} ({name}) failed: {source}")]
    Failed {
        version: u32,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// Creates `path` (and its directory) if needed and applies the missing `migrations`.
pub fn migrate_file(path: &Path, migrations: &[Migration]) -> Result<Vec<u32>, SqliteMigrationError> {
    lablet_infrastructure::private_files::prepare_private_file(path).map_err(|source| {
        SqliteMigrationError::Directory {
            path: path.display().to_string(),
            source,
        }
    })?;
    let mut conn = Connection::open(path).map_err(|source| SqliteMigrationError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    migrate(&mut conn, migrations)
}

/// Applies the missing `migrations` to `conn`, each in its own transaction; returns the
/// versions applied.
pub fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<Vec<u32>, SqliteMigrationError> {
    conn.execute_batch(CREATE_MIGRATIONS)?;
    let mut applied = Vec::new();
    for migration in migrations {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: Option<i64> = tx.query_row(APPLIED, [migration.version], |r| r.get(0)).optional()?;
        if done.is_some() {
            continue;
        }
        let failed = |source| SqliteMigrationError::Failed {
            version: migration.version,
            name: migration.name,
            source,
        };
        tx.execute_batch(migration.sql).map_err(failed)?;
        tx.execute(
            RECORD_APPLIED,
            params![migration.version, migration.name, SystemClock.now().to_rfc3339()],
        )
        .map_err(failed)?;
        tx.commit()?;
        applied.push(migration.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_create_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/lablet.db");
        assert_eq!(migrate_file(&path, EVENT_STORE).unwrap(), vec![1, 2]);
        assert_eq!(migrate_file(&path, EVENT_STORE).unwrap(), Vec::<u32>::new());
        let conn = Connection::open(&path).unwrap();
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'events'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn the_stream_index_migration_keeps_every_event() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &EVENT_STORE[..1]).unwrap();
        for (position, stream, version) in [(1, "a-1", 1), (2, "b-1", 1), (3, "a-1", 2)] {
            conn.execute(
                "INSERT INTO events (position, event_id, stream, version, event_type, schema_version, occurred_at,
                                     recorded_at, actor, payload, hash)
                 VALUES (?1, ?2, ?3, ?4, 't', 1, 'now', 'now', 'x', '{}', 'h')",
                params![position, format!("id-{position}"), stream, version],
            )
            .unwrap();
        }
        assert_eq!(migrate(&mut conn, EVENT_STORE).unwrap(), vec![2]);
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM events"), 3);
        assert_eq!(count("SELECT count(*) FROM events WHERE stream = 'a-1'"), 2);
        assert_eq!(
            count("SELECT position FROM stream_index_progress"),
            0,
            "the writer indexes the existing events when it starts"
        );
    }

    #[test]
    fn a_failing_migration_leaves_nothing_behind() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [Migration {
            version: 1,
            name: "broken",
            sql: "CREATE TABLE a (x); CREATE TABLE ((",
        }];
        assert!(matches!(
            migrate(&mut conn, &broken),
            Err(SqliteMigrationError::Failed { version: 1, .. })
        ));
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'a'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }
}
