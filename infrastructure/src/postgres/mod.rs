//! The PostgreSQL adapters (`postgres://…`): the event store, with its writer and its
//! `LISTEN/NOTIFY` follower; and, beside each other, the read models, the outbox relays' state
//! and the API keys.
//!
//! Connections are plain TCP (`sslmode=disable` or `prefer`); a URL that requires TLS is
//! refused at start, since no TLS connector is built in yet.

mod api_keys;
mod event_store;
mod follower;
mod leases;
pub mod log_batch;
pub mod log_writer;
mod outbox;
mod read_models;
mod rebuilds;
mod rows;
mod sealed_secrets;

pub use api_keys::PostgresApiKeyStore;
pub use event_store::PostgresEventStore;
pub use leases::PostgresLeaseStore;
pub use outbox::PostgresOutboxStore;
pub use read_models::PostgresReadModelStore;
pub use rebuilds::STAGING_SCHEMA_PREFIX;
pub use sealed_secrets::PostgresSecretTable;

use std::str::FromStr;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

const TABLE_EXISTS: &str = include_str!("sql/table_exists.sql");

/// The channel every append notifies with the new head position.
pub const EVENTS_CHANNEL: &str = "lablet_events";

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("`{url}` is not a PostgreSQL URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error("{target} has no Lablet schema (table {table} is missing); run `lablet migrate`")]
    NotMigrated { target: String, table: &'static str },
    #[error("PostgreSQL at {target}: {source}")]
    Sql {
        target: String,
        source: tokio_postgres::Error,
    },
}

/// A parsed PostgreSQL URL and a printable name for it (without the password).
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    pub config: Config,
    pub name: String,
}

impl PostgresTarget {
    /// Parses `url` (`postgres://user@host:port/database?…`), refusing TLS requirements.
    pub fn parse(url: &str) -> Result<PostgresTarget, PostgresError> {
        let bad = |reason: String| PostgresError::BadUrl {
            url: redact(url),
            reason,
        };
        let config = Config::from_str(url).map_err(|e| bad(e.to_string()))?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(bad("sslmode=require is not supported: Lablet connects without TLS \
                            (use sslmode=disable or prefer)"
                .into()));
        }
        let database = config.get_dbname().unwrap_or("(default database)");
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        if hosts.is_empty() {
            return Err(bad("the URL names no host".into()));
        }
        Ok(PostgresTarget {
            name: format!("{}/{database}", hosts.join(",")),
            config,
        })
    }

    /// A new connection; its driver runs on a task of its own until the client is dropped.
    pub async fn connect(&self) -> Result<Client, PostgresError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|source| PostgresError::Connect {
                target: self.name.clone(),
                source,
            })?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "a PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// Fails unless `table` exists (the migrations have run).
    pub async fn require_table(&self, client: &Client, table: &'static str) -> Result<(), PostgresError> {
        let found = client
            .query_one(TABLE_EXISTS, &[&table])
            .await
            .map_err(|source| self.sql(source))?;
        if found.get::<_, bool>(0) {
            Ok(())
        } else {
            Err(PostgresError::NotMigrated {
                target: self.name.clone(),
                table,
            })
        }
    }

    pub fn sql(&self, source: tokio_postgres::Error) -> PostgresError {
        PostgresError::Sql {
            target: self.name.clone(),
            source,
        }
    }
}

/// A pool of at most `size` connections to `target`, recycled after errors.
pub fn pool(target: &PostgresTarget, size: usize) -> Result<deadpool_postgres::Pool, PostgresError> {
    use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
    let config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = Manager::from_config(target.config.clone(), NoTls, config);
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| PostgresError::BadUrl {
            url: target.name.clone(),
            reason: e.to_string(),
        })
}

/// `url` with any password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_tls_requirements_refused() {
        let target = PostgresTarget::parse("postgres://root@127.0.0.1:5432/test").unwrap();
        assert_eq!(target.name, "127.0.0.1/test");
        let refused = PostgresTarget::parse("postgres://u:secret@db/x?sslmode=require").unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("sslmode=require"), "{message}");
        assert!(!message.contains("secret"), "the password stays out: {message}");
        assert!(PostgresTarget::parse("postgres://db:notaport/x").is_err());
    }
}
