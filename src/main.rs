//! The gigatile command line: thin glue over the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gigatile: {err:#}");
            ExitCode::FAILURE
        }
    }
}
