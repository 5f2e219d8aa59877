//! The `lablet` command line.

mod auth;
#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod demo_lablets;
/// Stands in for the demo in a build without the `demo` feature (and so without the CML
/// simulator): `serve --demo` says what is missing and stops.
#[cfg(not(feature = "demo"))]
mod demo {
    use crate::app::App;
    use lablet_infrastructure::Settings;

    pub struct Demo;

    pub fn adjust(_: &mut Settings) {}

    pub async fn start(_: &App, _: &std::path::Path) -> Result<Demo, String> {
        Err("--demo needs a lablet built with the `demo` feature (the CML simulator)".into())
    }

    impl Demo {
        pub async fn stop(self) {}
    }
}
mod events;
mod outbox;
mod rebuild;

use crate::app::{build, serve_gracefully, StartupError};
use crate::auth::Role;
use clap::{Parser, Subcommand};
use lablet_application::ports::LAG_COUNT_LIMIT;
use lablet_infrastructure::stores::open_stores;
use lablet_infrastructure::Settings;
use lablet_projections::standard_projectors;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lablet",
    version,
    about = "Runs hands-on network labs on a fleet of CML servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the projections and the background jobs.
    Serve {
        /// Address to listen on (overrides LABLET_HTTP_ADDR).
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// Also start three simulated CML servers with labs and register them as workers.
        #[arg(long)]
        demo: bool,
    },
    /// Bring every store to the newest schema.
    Migrate,
    /// Inspect projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Read and verify the event log.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// See what the CloudEvents relays parked, and redrive it.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Bearer tokens signed with the local key (the embedded default).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// API keys for machine callers.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a token for a subject and roles.
    Issue {
        /// The subject: who the token stands for, recorded as the actor of its commands.
        #[arg(long)]
        sub: String,
        /// A role it grants (admin, manager, user, auditor, integrator); repeat for more.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// How long it is valid: 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = auth::parse_ttl)]
        ttl: std::time::Duration,
    },
    /// Make a new signing key; tokens of the previous key stay valid until they expire.
    RotateKey,
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create a key and print it (shown once).
    Create {
        /// A role it grants; repeat for more.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// What the key is for.
        #[arg(long, default_value = "unnamed")]
        name: String,
    },
    /// Every key, without secrets.
    List,
    /// Revoke a key at once.
    Revoke { id: String },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text.trim()).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("`{text}` is not a role; use one of {}", known.join(", "))
    })
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Each sink's checkpoint and lag, and the parked events, oldest first.
    Parked {
        /// Parked events to list.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Deliver parked events again: one event (and its subject's earlier parked events), or all.
    Redrive {
        /// The parked event's id.
        event_id: Option<uuid::Uuid>,
        /// Every parked event.
        #[arg(long, conflicts_with = "event_id")]
        all: bool,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Write events as JSON lines, in log order (or version order with --stream).
    Replay {
        /// Only this stream, e.g. lab_record-<uuid>.
        #[arg(long)]
        stream: Option<String>,
        /// First position to write.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last position to write.
        #[arg(long)]
        to: Option<u64>,
    },
    /// Check every stream's hash chain; exits non-zero at the first broken link.
    Verify,
    /// Print one SHA-256 over all stream heads at a position (default: the head).
    Digest {
        #[arg(long)]
        at: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Each projection's checkpoint and how far it lags the log.
    Status,
    /// Replay the log into a fresh read model beside the live one, which keeps serving, and swap
    /// it in atomically once caught up; with `--verify`, report every document that differs
    /// instead of swapping.
    Rebuild {
        /// Projections to rebuild (lab_records, lablet_instances, work_orders).
        names: Vec<String>,
        /// All projections.
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Compare with the live projection instead of replacing it.
        #[arg(long)]
        verify: bool,
    },
}

/// Parses the command line and runs it; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Held to the end of `main`: dropping it sends the spans still buffered.
    let _telemetry = match crate::telemetry::init() {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("lablet: {message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("lablet: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("lablet: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let mut settings = Settings::from_env().map_err(|e| e.to_string())?;
    match cli.command {
        Command::Serve { addr, demo } => {
            if let Some(addr) = addr {
                settings.http_addr = addr;
            }
            if demo {
                demo::adjust(&mut settings);
            }
            serve(settings, demo).await?;
        }
        Command::Migrate => {
            for report in lablet_migrations::migrate_all(&settings)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("{}: applied {:?}", report.store, report.applied);
            }
        }
        Command::Projections {
            command: ProjectionsCommand::Status,
        } => projection_status(&settings).await?,
        Command::Projections {
            command: ProjectionsCommand::Rebuild { names, all, verify },
        } => {
            if !all && names.is_empty() {
                return Err("name a projection or pass --all".into());
            }
            lablet_migrations::migrate_all(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let stores = open_stores(&settings).await.map_err(|e| e.to_string())?;
            return rebuild::rebuild(&stores, &names, verify).await;
        }
        Command::Events { command } => {
            lablet_migrations::migrate_all(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let stores = open_stores(&settings).await.map_err(|e| e.to_string())?;
            let store = stores.events.as_ref();
            return match command {
                EventsCommand::Replay { stream, from, to } => events::replay(store, stream.as_deref(), from, to).await,
                EventsCommand::Verify => events::verify(store).await,
                EventsCommand::Digest { at } => events::digest(store, at).await,
            };
        }
        Command::Outbox { command } => {
            lablet_migrations::migrate_all(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let stores = open_stores(&settings).await.map_err(|e| e.to_string())?;
            return match command {
                OutboxCommand::Parked { limit } => outbox::parked(&settings, &stores, limit).await,
                OutboxCommand::Redrive {
                    event_id: None,
                    all: false,
                } => Err("name a parked event id or pass --all".into()),
                OutboxCommand::Redrive { event_id, .. } => outbox::redrive(&settings, &stores, event_id).await,
            };
        }
        Command::Token {
            command: TokenCommand::RotateKey,
        } => return auth::rotate_key(&settings),
        Command::Token {
            command: TokenCommand::Issue { sub, roles, ttl },
        } => return auth::issue(&settings, &sub, &roles, ttl),
        Command::Apikey { command } => {
            lablet_migrations::migrate_all(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let stores = open_stores(&settings).await.map_err(|e| e.to_string())?;
            return match command {
                ApikeyCommand::Create { roles, name } => auth::create_key(&stores, &name, &roles).await,
                ApikeyCommand::List => auth::list_keys(&stores).await,
                ApikeyCommand::Revoke { id } => auth::revoke_key(&stores, &id).await,
            };
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings, with_demo: bool) -> Result<(), String> {
    let app = build(&settings).await.map_err(|e| e.to_string())?;
    let demo = if with_demo {
        Some(demo::start(&app, &settings.data_dir).await?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .map_err(|source| {
            StartupError::Listen {
                addr: settings.http_addr.to_string(),
                source,
            }
            .to_string()
        })?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, data_dir = %settings.data_dir.display(), "lablet is serving");
    println!("lablet listening on http://{addr}");
    if demo.is_some() {
        println!("demo: see the fleet with");
        println!("  T=$(lablet token issue --sub demo --role admin)");
        println!("  curl -H \"authorization: Bearer $T\" http://{addr}/api/v1/workers");
        println!("  curl -H \"authorization: Bearer $T\" http://{addr}/api/v1/lab-records");
        println!("  curl -H \"authorization: Bearer $T\" http://{addr}/api/v1/instances");
    }
    let grace = settings.http_limits.shutdown_grace;
    let served = serve_gracefully(app, listener, shutdown_signal(), Some(grace))
        .await
        .map_err(|source| StartupError::Listen { addr, source }.to_string());
    if let Some(demo) = demo {
        demo.stop().await;
    }
    served
}

/// Resolves at SIGTERM (what container runtimes and systemd send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "SIGTERM cannot be handled; only Ctrl-C stops gracefully");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

async fn projection_status(settings: &Settings) -> Result<(), String> {
    lablet_migrations::migrate_all(settings)
        .await
        .map_err(|e| e.to_string())?;
    let stores = open_stores(settings).await.map_err(|e| e.to_string())?;
    let head = stores.events.head_position().await.map_err(|e| e.to_string())?;
    println!(
        "{:<20} {:>12} {:>12} {:>10}  STATE",
        "PROJECTION", "CHECKPOINT", "HEAD", "LAG"
    );
    for projector in standard_projectors() {
        let name = projector.collection().name;
        let status = stores.read_models.status(name).await.map_err(|e| e.to_string())?;
        let checkpoint = status.as_ref().map(|s| s.position);
        let shown = checkpoint.map_or("never ran".to_string(), |c| c.to_string());
        let lag = stores
            .events
            .count_after(checkpoint.unwrap_or(0), LAG_COUNT_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        let state = match status.and_then(|s| s.error) {
            Some(fault) => format!(
                "STUCK at position {} since {}: {}",
                fault.position.map_or("?".to_string(), |p| p.to_string()),
                fault.at.to_rfc3339(),
                fault.message
            ),
            None if lag == 0 => "caught up".to_string(),
            None => "behind".to_string(),
        };
        println!("{name:<20} {shown:>12} {head:>12} {lag:>10}  {state}");
    }
    Ok(())
}
