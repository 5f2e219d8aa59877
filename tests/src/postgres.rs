//! PostgreSQL for tests: a fresh database per test, on the server that
//! `LABLET_TEST_POSTGRES_URL` names (then it must answer: CI sets it) or else on
//! `postgres://postgres@127.0.0.1:5432/test` if one answers there. Without either, the test
//! says it was skipped and why, and passes without checking anything.

use crate::url::with_database;
use lablet_infrastructure::postgres::PostgresTarget;
use tokio_postgres::NoTls;

const URL_VARIABLE: &str = "LABLET_TEST_POSTGRES_URL";
const LOCAL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database made for one test, dropped by [`TestDatabase::drop_now`].
pub struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    server_url: String,
    name: String,
}

/// The server URL to use, or `None` (with the reason printed) when the test must be skipped.
async fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VARIABLE).ok().filter(|url| !url.is_empty()) {
        Some(url) => {
            if let Err(err) = tokio_postgres::connect(&url, NoTls).await {
                panic!("{URL_VARIABLE}={url} does not answer: {err}");
            }
            Some(url)
        }
        None => match tokio_postgres::connect(LOCAL_DEFAULT, NoTls).await {
            Ok(_) => Some(LOCAL_DEFAULT.to_owned()),
            Err(err) => {
                eprintln!("SKIPPED {test}: no PostgreSQL at {LOCAL_DEFAULT} ({err}); set {URL_VARIABLE} to run it");
                None
            }
        },
    }
}

impl TestDatabase {
    /// A new, empty database for `test`, or `None` when PostgreSQL tests are skipped here.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        Some(Self::create_on(&server_url(test).await?).await)
    }

    /// A new, empty database on the server at `server_url`.
    pub async fn create_on(server_url: &str) -> TestDatabase {
        let server_url = server_url.to_owned();
        let name = format!("lablet_test_{}", uuid::Uuid::now_v7().simple());
        let admin = PostgresTarget::parse(&server_url).expect("a PostgreSQL URL");
        let client = admin.connect().await.expect("the test server answers");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("a test database");
        TestDatabase {
            url: with_database(&server_url, &name),
            server_url,
            name,
        }
    }

    /// The database's URL, for a server process.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn target(&self) -> PostgresTarget {
        PostgresTarget::parse(&self.url).expect("the test database URL")
    }

    /// Drops the database (and the connections still open on it).
    pub async fn drop_now(self) {
        let admin = PostgresTarget::parse(&self.server_url).expect("a PostgreSQL URL");
        if let Ok(client) = admin.connect().await {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .await;
        }
    }
}
