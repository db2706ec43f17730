//! The `tally` binary: parse the command line, start logging, run the
//! command, turn its error into a message and an exit code.

use std::process::ExitCode;

use clap::Parser;
use tally::cli::Cli;

fn main() -> ExitCode {
    // Before parsing, so that .env can set TALLY_CONFIG too.
    let dotenv = tally::commands::load_dotenv();
    let cli = Cli::parse();
    if let Err(message) = tally::telemetry::init() {
        eprintln!("tally: {message}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tally: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = dotenv.and_then(|warnings| {
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        runtime.block_on(tally::commands::execute(cli))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tally: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
