//! The `lablet` binary.

fn main() -> std::process::ExitCode {
    lablet_api::cli::main()
}
