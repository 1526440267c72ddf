//! Command-line interface: `serve`, `config`, `check`, `rules`, `version`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mlsec-monitor",
    about = "Monitoring and alerting appliance for the ML security platform"
)]
pub struct Cli {
    /// TOML config file (also CONFIG_FILE).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Print the effective configuration (secrets masked) and exit 2 if it is invalid.
    Config(ServeArgs),
    /// Probe every configured service once, print a table, exit 1 if any is unhealthy.
    Check(ServeArgs),
    /// List the effective alert rules (built-in and configured).
    Rules(ServeArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (SERVICE_HOST).
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on, 0 for any free port (SERVICE_PORT).
    #[arg(long)]
    pub port: Option<String>,
    /// Where the database lives (DATA_DIR).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// trace, debug, info, warn or error (LOG_LEVEL).
    #[arg(long)]
    pub log_level: Option<String>,
}
