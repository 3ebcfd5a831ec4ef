//! Command-line interface: argument definitions and dispatch.

mod audit;
mod factor;
mod group;
mod policy;
mod recordings;
mod serve;
mod target;
mod user;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use gatehouse_core::config::Overrides;
use gatehouse_core::{Config, Gateway};

/// Gatehouse: an SSH jump server with an enforced two-factor gate.
#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about, propagate_version = true)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (database, keys, recordings); overrides the config file.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway: SSH frontend and web UI.
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Manage groups.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Show or change the two-factor policy.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Manage targets and grants.
    #[command(subcommand)]
    Target(target::TargetCmd),
    /// Manage users' second factors.
    #[command(subcommand)]
    Factor(factor::FactorCmd),
    /// Read the audit log.
    Audit(audit::AuditArgs),
    /// List session recordings and apply their retention limits.
    #[command(subcommand)]
    Recordings(recordings::RecordingsCmd),
}

/// Loads the configuration from the file, the environment and the global flags.
pub fn load_config(args: &Args, extra: Overrides) -> Result<Config> {
    let overrides = Overrides { data_dir: args.data_dir.clone(), ..extra };
    Ok(Config::load(args.config.as_deref(), std::env::vars(), &overrides)?)
}

pub async fn run(args: Args) -> Result<()> {
    if let Command::Serve(serve_args) = &args.command {
        return serve::run(&args, serve_args).await;
    }
    let config = load_config(&args, Overrides::default())?;
    let gw = Gateway::open(config).await?;
    match args.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::Migrate => {
            println!("database is up to date");
            Ok(())
        }
        Command::User(cmd) => user::run(&gw, cmd).await,
        Command::Group(cmd) => group::run(&gw, cmd).await,
        Command::Policy(cmd) => policy::run(&gw, cmd).await,
        Command::Target(cmd) => target::run(&gw, cmd).await,
        Command::Factor(cmd) => factor::run(&gw, cmd).await,
        Command::Audit(a) => audit::run(&gw, a).await,
        Command::Recordings(cmd) => recordings::run(&gw, cmd).await,
    }
}

/// Reads a secret from standard input: the first line, without its line ending.
pub fn read_secret_stdin(what: &str) -> Result<String> {
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf).with_context(|| format!("reading the {what} from standard input"))?;
    let line = buf.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(line)
}

/// Parses `on`/`off`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    pub fn is_on(self) -> bool {
        matches!(self, Switch::On)
    }
}
