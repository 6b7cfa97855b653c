use crate::cli::ConfigCommand;
use crate::config::Config;
use crate::output::Output;

pub fn run(cmd: &ConfigCommand, config: &Config, out: Output) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Show if out.json => out.json(config),
        ConfigCommand::Show => out.text(&config.to_toml()),
    }
}
