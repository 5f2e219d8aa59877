//! The `lablet` binary as a separate process, for tests that kill a server or run the CLI.
//!
//! Cargo tells only test targets where the binary is (`CARGO_BIN_EXE_lablet-under-test`), so
//! every function takes its path.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// What a finished command said.
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Starts `lablet serve` on `port` over `data_dir`, with `env` added to its environment.
pub fn start_server(binary: &str, data_dir: &Path, port: u16, env: &[(&str, &str)]) -> Child {
    start_server_logging(binary, data_dir, port, env, Stdio::null())
}

/// [`start_server`] writing its log to `stderr`.
pub fn start_server_logging(binary: &str, data_dir: &Path, port: u16, env: &[(&str, &str)], stderr: Stdio) -> Child {
    Command::new(binary)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("LABLET_DATA_DIR", data_dir)
        .env("LABLET_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the server process starts")
}

/// Runs `lablet <args>` over `data_dir` to its end.
pub fn run_cli(binary: &str, data_dir: &Path, args: &[&str]) -> CliOutput {
    run_cli_with(binary, data_dir, args, &[])
}

/// [`run_cli`] with `env` added to its environment.
pub fn run_cli_with(binary: &str, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let output = Command::new(binary)
        .args(args)
        .env("LABLET_DATA_DIR", data_dir)
        .env("LABLET_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("the command runs");
    CliOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
