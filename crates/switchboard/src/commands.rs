//! One module per domain of the CLI; [`dispatch`] routes a parsed command to it.

mod config;
mod db;
mod demo;
mod ingest;
mod init;
mod jobs;
mod privacy;
mod serve;
mod users;

use crate::cli::{Cli, Command};
use crate::config::{Config, Sources};
use crate::output::Output;

/// Runs one parsed command with its loaded config.
pub async fn dispatch(cli: Cli, sources: Sources, config: Config) -> anyhow::Result<()> {
    let out = Output { json: cli.json };
    match cli.command {
        Command::Init(args) => init::run(&args, &sources, &config, out).await,
        Command::Config(cmd) => config::run(&cmd, &config, out),
        Command::Db(cmd) => db::run(&cmd, &config, out).await,
        Command::Jobs(cmd) => jobs::run(&cmd, &config, out).await,
        Command::Ingest(cmd) => ingest::run(cmd, &config, out).await,
        Command::Sql(args) => ingest::sql(&args, &config, out).await,
        Command::Privacy(cmd) => privacy::run(cmd, &config, out).await,
        Command::Serve(args) => serve::run(&args, &config).await,
        Command::Users(cmd) => users::run(&cmd, &config, out).await,
        Command::Apikeys(cmd) => users::api_keys(&cmd, &config, out).await,
        Command::Demo(args) => demo::run(*args, &sources, config, out).await,
    }
}
