//! Lablet's adapters: the engines behind the application's ports, and configuration.
//!
//! Each adapter implements a port of `lablet-application` and nothing more; which one runs is
//! chosen by URL at start-up. Schemas are created by `lablet-migrations`, never here.

pub mod append_rules;
pub mod artifacts;
pub mod auth_settings;
pub mod cloudevents;
pub mod cml;
pub mod config;
pub mod credentials;
pub mod documents;
pub mod fleet_settings;
pub mod key_file;
pub mod kurrentdb;
pub mod mongo;
pub mod postgres;
pub mod private_files;
pub mod secrets;
pub mod sqlite;
pub mod stores;
pub mod template_seeds;
pub mod tls;

pub use config::{ConfigError, Settings};
