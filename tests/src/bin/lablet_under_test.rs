//! The `lablet` command line, built inside this test package so that tests can start it as a
//! separate process (and kill it) through `CARGO_BIN_EXE_lablet-under-test`.

fn main() -> std::process::ExitCode {
    lablet_api::cli::main()
}
