use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = sidecar::cli::Cli::parse();
    match sidecar::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sidecar: {e:#}");
            ExitCode::FAILURE
        }
    }
}
