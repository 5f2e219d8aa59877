//! Opening SQLite connections with the settings every Lablet file uses.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

const TABLE_EXISTS: &str = include_str!("sql/table_exists.sql");

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("cannot make {path} owner-only: {source}")]
    Prepare { path: String, source: std::io::Error },
    #[error("{path} has no Lablet schema; run `lablet migrate` (or `lablet serve`, which migrates) first")]
    NoSchema { path: String },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// Opens `path` (made owner-only first, see [`crate::private_files`]) in WAL mode with full
/// durability: a commit is on disk, across power loss, before it is acknowledged.
pub fn open_connection(path: &Path) -> Result<Connection, SqliteError> {
    crate::private_files::prepare_private_file(path).map_err(|source| SqliteError::Prepare {
        path: path.display().to_string(),
        source,
    })?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| SqliteError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 2 MiB of page cache per connection; writers ask for more (see `with_writer_cache`).
    conn.pragma_update(None, "cache_size", -2_048)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Gives a writing connection a 16 MiB page cache: writers touch the hot index pages over and
/// over, readers mostly stream.
pub fn with_writer_cache(conn: Connection) -> Result<Connection, SqliteError> {
    conn.pragma_update(None, "cache_size", -16_384)?;
    Ok(conn)
}

/// Fails unless `table` exists, so a missing migration is reported at start, not mid-request.
pub fn require_table(conn: &Connection, path: &Path, table: &str) -> Result<(), SqliteError> {
    let found: i64 = conn.query_row(TABLE_EXISTS, [table], |row| row.get(0))?;
    if found == 0 {
        return Err(SqliteError::NoSchema {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

/// One connection shared by a small store (outbox, API keys), used on the blocking pool.
#[derive(Clone)]
pub struct SharedConnection(std::sync::Arc<std::sync::Mutex<Connection>>);

impl SharedConnection {
    /// Opens the read-model file at `path`, which migrations made, checks that `table` is there
    /// and sets its `synchronous` level (`NORMAL` or `FULL`).
    pub fn open(path: &Path, table: &str, synchronous: &str) -> Result<Self, SqliteError> {
        let conn = open_connection(path)?;
        require_table(&conn, path, table)?;
        conn.pragma_update(None, "synchronous", synchronous)?;
        Ok(SharedConnection(std::sync::Arc::new(std::sync::Mutex::new(conn))))
    }

    /// Runs `work` on the connection off the async runtime; `unavailable` turns a poisoned lock
    /// or a failed blocking task into the store's error.
    pub async fn run<T, E, F>(&self, unavailable: fn(String) -> E, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| unavailable("connection lock poisoned".into()))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?
    }
}

/// A timestamp column written with `to_rfc3339`.
pub fn parse_utc(text: &str) -> Result<chrono::DateTime<chrono::Utc>, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&chrono::Utc))
}
