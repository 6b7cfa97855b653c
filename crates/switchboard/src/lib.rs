//! The `switchboard` binary as a library: command line, configuration, logging and wiring,
//! so that tests drive exactly what users run.

pub mod app;
pub mod cli;
mod commands;
pub mod config;
pub mod logging;
mod output;

use config::{ConfigError, Sources};

/// Exit code of a failed command.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage or configuration error (clap uses it for bad arguments too).
pub const EXIT_USAGE: u8 = 2;

/// Loads the config, sets up logging and runs the command; returns the process exit code.
pub async fn run(cli: cli::Cli) -> u8 {
    let sources = Sources { file: cli.config.clone(), data_dir: cli.data_dir.clone() };
    let config = match config::load(&sources) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    logging::init(&config.log);
    match commands::dispatch(cli, sources, config).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some()
                || e.downcast_ref::<sb_jobs::JobsError>().is_some_and(is_config)
            {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            }
        }
    }
}

fn is_config(e: &sb_jobs::JobsError) -> bool {
    matches!(e, sb_jobs::JobsError::Config(_) | sb_jobs::JobsError::UnknownJob(_))
}
