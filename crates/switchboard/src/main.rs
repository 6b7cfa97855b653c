//! `switchboard`: parse the command line, run, exit with the documented code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = switchboard::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(switchboard::EXIT_FAILED);
        }
    };
    std::process::ExitCode::from(runtime.block_on(switchboard::run(cli)))
}
