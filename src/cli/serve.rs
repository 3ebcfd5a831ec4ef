//! `gatehouse serve`: the SSH frontend and the web UI in one process, on one database,
//! stopped cleanly by SIGINT or SIGTERM.

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use gatehouse_core::admin::{self, Actor, users::NewAccount};
use gatehouse_core::config::{LogFormat, Overrides};
use gatehouse_core::{Error, Gateway, vault};
use gatehouse_core::{housekeeping, users};
use tokio_util::sync::CancellationToken;

use super::{Args, load_config};

#[derive(ClapArgs, Debug)]
pub struct ServeArgs {
    /// SSH listen address (overrides ssh_listen).
    #[arg(long, value_name = "ADDR")]
    ssh_listen: Option<String>,
    /// Web listen address (overrides web_listen).
    #[arg(long, value_name = "ADDR")]
    web_listen: Option<String>,
}

pub async fn run(args: &Args, serve: &ServeArgs) -> Result<()> {
    let config = load_config(
        args,
        Overrides { ssh_listen: serve.ssh_listen.clone(), web_listen: serve.web_listen.clone(), ..Default::default() },
    )?;
    init_logging(config.log.format);
    let gw = Gateway::open(config).await?;
    tracing::info!(data_dir = %gw.config.data_dir.display(), database = %redact(&gw.config.database_url()), "database ready");
    gatehouse_core::factors::duo::log_start(&gw.config.duo);
    bootstrap_admin(&gw).await?;
    // Before the listeners open, so no session of this process can be among them. Not
    // fatal: stale rows only mislead the sessions page, they grant nothing.
    match gatehouse_core::live_sessions::reclaim_node(&gw).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(sessions = n, "removed live sessions left by an earlier run of this node"),
        Err(e) => tracing::error!(error = %e, "could not remove live sessions left by an earlier run"),
    }
    match gatehouse_core::recordings::retention::close_orphans(&gw).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(recordings = n, "marked recordings cut off by an earlier run of this node as ended"),
        Err(e) => tracing::error!(error = %e, "could not close recordings left by an earlier run"),
    }

    let shutdown = CancellationToken::new();
    let ssh = gatehouse_server::Server::bind(gw.clone()).await.context("starting the SSH frontend")?;
    let web = gatehouse_webui::bind(gw.clone()).await.context("starting the web UI")?;
    tracing::info!(ssh = %ssh.local_addr(), web = %web.local_addr(), public_url = %gw.config.public_url(), "gatehouse is listening");
    if let Some(certs) = web.certificates() {
        tracing::info!(
            certificate = %certs.cert_path().display(),
            sha256 = %certs.fingerprint(),
            self_signed = certs.self_signed,
            "web UI on HTTPS"
        );
        if certs.self_signed {
            // Standard output, like the first administrator's password: what a person
            // starting the gateway compares with what the browser shows.
            println!();
            println!("  Web UI: {} (self-signed certificate)", gw.config.public_url());
            println!("  SHA-256 fingerprint: {}", certs.fingerprint());
            println!();
        }
    } else {
        tracing::warn!("web UI on plain HTTP (web.tls = \"off\"): put a TLS-terminating proxy in front");
    }

    let metrics = gatehouse_webui::metrics::bind(gw.clone()).await.context("starting the metrics exporter")?;
    let metrics_task = metrics.map(|m| {
        tracing::info!(metrics = %m.local_addr(), "Prometheus metrics at /metrics");
        tokio::spawn(m.run(shutdown.clone()))
    });
    let ssh_task = tokio::spawn(ssh.run(shutdown.clone()));
    let web_task = tokio::spawn(web.run(shutdown.clone()));
    let upkeep = tokio::spawn(housekeeping(gw.clone(), shutdown.clone()));
    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let (a, b, _) = tokio::join!(ssh_task, web_task, upkeep);
    if let Some(m) = metrics_task {
        m.await.context("metrics task")??;
    }
    a.context("SSH task")??;
    b.context("web task")??;
    tracing::info!("stopped");
    Ok(())
}

/// Runs a housekeeping round every [`housekeeping::EVERY`] until shutdown.
async fn housekeeping(gw: Gateway, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(housekeeping::EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => housekeeping::round(&gw).await,
        }
    }
}

/// On the very first start there is no administrator: create `admin` with a random
/// one-time password and print it once (to standard output, never to the log).
///
/// A new installation (no account at all) first turns on the administrators' force-2FA
/// scope, so `admin` enrolls a second factor at their first web login before any admin
/// page opens. The scope comes first: a crash in between leaves it on with no
/// administrator yet, never an administrator without it. An installation that already has
/// accounts keeps its policy as it is.
async fn bootstrap_admin(gw: &Gateway) -> Result<()> {
    if users::any_admin(&gw.db).await? {
        return Ok(());
    }
    if users::list(&gw.db).await?.is_empty() {
        admin::policy::set_force_2fa_admins(gw, &Actor::Bootstrap, true).await?;
    }
    let password = vault::random_code(20);
    let first =
        NewAccount { name: "admin", password: Some(&password), email: None, is_admin: true, one_time_password: true };
    match admin::users::create(gw, &Actor::Bootstrap, first).await {
        Ok(_) => {
            println!();
            println!("  First start: created the administrator 'admin'.");
            println!("  One-time password: {password}");
            println!("  Log in at {} and choose a new password.", gw.config.public_url());
            println!();
        }
        // Another node (or an earlier run) made an 'admin' in the meantime.
        Err(Error::Duplicate { .. }) => {
            users::set_admin(&gw.db, "admin", true).await?;
            tracing::warn!("a user named admin existed without the administrator flag; the flag was set");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| EnvFilter::new("info,russh=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        // One JSON object per line (timestamp, level, message, fields) for log shippers.
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => {
            // Colours only for a person at a terminal, never into a log file or journal.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(ansi).try_init()
        }
    };
}

/// The database URL without a password, for the log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
