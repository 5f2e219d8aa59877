//! PostgreSQL migrations. Each store keeps its own table of applied migrations
//! (`lablet_event_store_migrations`), so several stores can share one database. A migration
//! runs in its own transaction under an advisory lock, so processes starting together apply it
//! once.

use crate::sqlite::Migration;
use lablet_infrastructure::postgres::{PostgresError, PostgresTarget};

const ADVISORY_LOCK: &str = include_str!("sql/advisory_lock.sql");
const CREATE_MIGRATIONS: &str = include_str!("sql/postgres_create_migrations.sql");
const APPLIED: &str = include_str!("sql/postgres_applied.sql");
const RECORD_APPLIED: &str = include_str!("sql/postgres_record_applied.sql");

pub const EVENT_STORE: &[Migration] = &[Migration {
    version: 1,
    name: "events",
    sql: include_str!("../sql/postgres/event_store_0001_events.sql"),
}];

/// The table of applied migrations of the event store.
pub const EVENT_STORE_TABLE: &str = "lablet_event_store_migrations";

/// The read models, the outbox relays' state and the API keys.
pub const READ_MODELS: &[Migration] = &[
    Migration {
        version: 1,
        name: "read_models",
        sql: include_str!("../sql/postgres/read_models_0001_read_models.sql"),
    },
    Migration {
        version: 2,
        name: "sealed_secrets",
        sql: include_str!("../sql/postgres/read_models_0002_sealed_secrets.sql"),
    },
    Migration {
        version: 3,
        name: "workers",
        sql: include_str!("../sql/postgres/read_models_0003_workers.sql"),
    },
    Migration {
        version: 4,
        name: "outbox_delivered",
        sql: include_str!("../sql/postgres/read_models_0004_outbox_delivered.sql"),
    },
    Migration {
        version: 5,
        name: "leases",
        sql: include_str!("../sql/postgres/read_models_0005_leases.sql"),
    },
    Migration {
        version: 6,
        name: "lablet_definitions",
        sql: include_str!("../sql/postgres/read_models_0006_lablet_definitions.sql"),
    },
    Migration {
        version: 7,
        name: "worker_templates",
        sql: include_str!("../sql/postgres/read_models_0007_worker_templates.sql"),
    },
];

/// The table of applied migrations of the read models.
pub const READ_MODELS_TABLE: &str = "lablet_read_models_migrations";

#[derive(Debug, thiserror::Error)]
pub enum PostgresMigrationError {
    #[error(transparent)]
    Connect(#[from] PostgresError),
    #[error("migration {version} ({name}) failed: {source}")]
    Failed {
        version: u32,
        name: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL: {0}")]
    Sql(#[from] tokio_postgres::Error),
}

/// Applies the missing `migrations` of the store whose applied migrations are in `table`;
/// returns the versions applied.
pub async fn migrate(
    target: &PostgresTarget,
    table: &str,
    migrations: &[Migration],
) -> Result<Vec<u32>, PostgresMigrationError> {
    let mut client = target.connect().await?;
    let lock_key = format!("lablet:{table}");
    let mut applied = Vec::new();
    for migration in migrations {
        let tx = client.transaction().await?;
        tx.execute(ADVISORY_LOCK, &[&lock_key]).await?;
        tx.batch_execute(&CREATE_MIGRATIONS.replace("{table}", table)).await?;
        let version = migration.version as i32;
        let done = tx.query_opt(&APPLIED.replace("{table}", table), &[&version]).await?;
        if done.is_some() {
            continue;
        }
        let failed = |source| PostgresMigrationError::Failed {
            version: migration.version,
            name: migration.name,
            source,
        };
        tx.batch_execute(migration.sql).await.map_err(failed)?;
        tx.execute(&RECORD_APPLIED.replace("{table}", table), &[&version, &migration.name])
            .await
            .map_err(failed)?;
        tx.commit().await?;
        applied.push(migration.version);
    }
    Ok(applied)
}
