//! Cross-checks SFrame implementations (RFC 9605) against each other.
//!
//! ```text
//! sframe-vectors check FILE           verify every case; prints "N passed, M failed"
//! sframe-vectors gen FILE [--seed S]  write fresh random cases in the exchange layout
//! ```
//!
//! `check` reads the RFC 9605 Appendix C layout (`header`, `aes_ctr_hmac`, `sframe` members,
//! as in ../shared/vectors/rfc9605.json) or the exchange layout (`cases`, see
//! ../shared/vectors/README.md), where a case with `"valid": false` must be rejected.

mod check;
mod generate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Check or generate SFrame (RFC 9605) test vectors")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify every case in FILE.
    Check { file: PathBuf },
    /// Write random cases in the exchange layout to FILE.
    Gen {
        file: PathBuf,
        /// Seed for a reproducible file; random when absent.
        #[arg(long)]
        seed: Option<u64>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Check { file } => {
            let report = check::check_file(&file)?;
            for failure in &report.failures {
                eprintln!("FAILED {failure}");
            }
            println!("{} passed, {} failed", report.passed, report.failures.len());
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Gen { file, seed } => {
            let seed = seed.unwrap_or_else(rand::random);
            let n = generate::write_file(&file, seed)?;
            println!("wrote {n} cases to {} (seed {seed})", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
