//! `lablet-cml-sim`: serve one or more simulated CML servers.
//!
//! `lablet-cml-sim --port 18101 --labs 3` serves one simulator with three labs; `--count 3`
//! serves three on consecutive ports. Each prints its URL on a line of its own.

use clap::Parser;
use lablet_cml_simulator::{LabSeed, RunningSimulator, SimulatorConfig};
use std::net::{IpAddr, SocketAddr};

#[derive(Parser)]
#[command(name = "lablet-cml-sim", about = "Serve simulated CML 2.9 servers")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port of the first simulator (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How many simulators to serve (on consecutive ports when --port is set).
    #[arg(long, default_value_t = 1)]
    count: u16,
    /// Labs each simulator starts with.
    #[arg(long, default_value_t = 2)]
    labs: u32,
    /// The CML user Lablet authenticates as.
    #[arg(long, default_value = "admin")]
    username: String,
    /// Its password.
    #[arg(long, default_value = "admin-password")]
    password: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut running = Vec::new();
    for n in 0..args.count {
        let port = if args.port == 0 { 0 } else { args.port + n };
        let config = SimulatorConfig {
            username: args.username.clone(),
            password: args.password.clone(),
            ..SimulatorConfig::default()
        };
        let simulator = RunningSimulator::start(SocketAddr::new(args.host, port), config).await?;
        for lab in 0..args.labs {
            simulator.add_lab(LabSeed {
                title: format!("Lab {} on simulator {}", lab + 1, n + 1),
                node_count: 3 + lab,
                link_count: 2 + lab,
                ..LabSeed::default()
            });
        }
        println!("{}", simulator.url());
        running.push(simulator);
    }
    tokio::signal::ctrl_c().await?;
    for simulator in running {
        simulator.stop().await;
    }
    Ok(())
}
