//! Command-line interface: argument definitions and dispatch.

mod audit;
mod directory;
mod factor;
mod group;
mod hostkey;
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
    /// Check a configuration file (and the files it names) without starting anything.
    CheckConfig {
        /// The file to check (default: --config).
        file: Option<std::path::PathBuf>,
    },
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
    /// The SSH host keys and their rotation.
    #[command(subcommand)]
    Hostkey(hostkey::HostkeyCmd),
    /// The LDAP / Active Directory directory: test bind, sync, look a user up.
    #[command(subcommand)]
    Directory(directory::DirectoryCmd),
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
    if let Command::CheckConfig { file } = &args.command {
        return check_config(&args, file.as_deref());
    }
    let config = load_config(&args, Overrides::default())?;
    let gw = Gateway::open(config).await?;
    match args.command {
        Command::Serve(_) | Command::CheckConfig { .. } => unreachable!("handled above"),
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
        Command::Hostkey(cmd) => hostkey::run(&gw, cmd).await,
        Command::Directory(cmd) => directory::run(&gw, cmd).await,
    }
}

/// `check-config`: parses and validates the file like `serve` would, then checks that the
/// files it names can be read, and says what it found. Touches no database.
fn check_config(args: &Args, file: Option<&std::path::Path>) -> Result<()> {
    let path = file.or(args.config.as_deref());
    let overrides = Overrides { data_dir: args.data_dir.clone(), ..Overrides::default() };
    let config = Config::load(path, std::env::vars(), &overrides)?;
    let mut problems = Vec::new();
    let readable = |p: &std::path::Path, what: &str, problems: &mut Vec<String>| {
        if let Err(e) = std::fs::File::open(p) {
            problems.push(format!("{what} {}: {e}", p.display()));
        }
    };
    if let (Some(cert), Some(key)) = (&config.web.tls_cert, &config.web.tls_key) {
        readable(cert, "web.tls_cert", &mut problems);
        readable(key, "web.tls_key", &mut problems);
    }
    for f in &config.ssh.host_key_files {
        readable(std::path::Path::new(f), "ssh.host_key_files", &mut problems);
    }
    if config.ldap.enabled()
        && let Err(e) = gatehouse_core::directory::Client::new(&config.ldap)
    {
        problems.push(e.to_string());
    }
    if let Some(parent) = config.audit.file.as_deref().and_then(std::path::Path::parent)
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        problems.push(format!("audit.file: the folder {} does not exist", parent.display()));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    let shown = path.map(|p| p.display().to_string()).unwrap_or_else(|| "(no file: defaults)".into());
    println!("{shown}: OK");
    println!("  data_dir     {}", config.data_dir.display());
    println!("  database     {}", if config.database_url().starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" });
    println!("  ssh          {}", config.ssh_listen);
    println!(
        "  web          {} ({})",
        config.web_listen,
        if config.web.tls_on() { "HTTPS" } else { "plain HTTP: behind a TLS proxy" }
    );
    println!("  public_url   {}", config.public_url());
    if let Some(m) = config.metrics.listen {
        println!("  metrics      {m}");
    }
    if config.ldap.enabled() {
        println!("  directory    {}", config.ldap.urls.join(", "));
    }
    Ok(())
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

/// Parses `on`/`off`/`inherit`: a per-user override of a switch.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Override {
    On,
    Off,
    Inherit,
}

impl Override {
    /// `None` for inherit.
    pub fn value(self) -> Option<bool> {
        match self {
            Override::On => Some(true),
            Override::Off => Some(false),
            Override::Inherit => None,
        }
    }
}
