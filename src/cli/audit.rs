//! `gatehouse audit …`: reading and exporting the audit log.

use std::io::Write;

use anyhow::{Result, bail};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use gatehouse_core::audit::{self, sinks};
use gatehouse_core::{Gateway, time};

#[derive(ClapArgs, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCmd>,
    /// Only events about this user.
    #[arg(long)]
    user: Option<String>,
    /// Only events with this name or prefix (e.g. "login").
    #[arg(long)]
    event: Option<String>,
    /// How many events (newest first).
    #[arg(long, default_value_t = 50)]
    limit: i64,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Every event in a time range, oldest first, for a SIEM or a spreadsheet.
    Export {
        /// From this UTC date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ).
        #[arg(long)]
        since: String,
        /// Up to this UTC date or time (default: now).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        event: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line (the `[audit] file` format).
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// Events read per query while exporting.
const PAGE: i64 = 1000;

pub async fn run(gw: &Gateway, a: AuditArgs) -> Result<()> {
    if let Some(AuditCmd::Export { since, until, format, user, event }) = a.command {
        return export(gw, &since, until.as_deref(), format, user, event).await;
    }
    let list =
        audit::list(&gw.db, &audit::Filter { user: a.user, event: a.event, limit: a.limit, ..Default::default() })
            .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for e in list {
            println!(
                "{} {:<8} {:<22} {:<7} user={} actor={} source={} {}",
                time::format_utc(e.at),
                audit::printable(&e.node),
                audit::printable(&e.event),
                e.outcome,
                audit::printable(e.user.as_deref().unwrap_or("-")),
                audit::printable(e.actor.as_deref().unwrap_or("-")),
                audit::printable(e.source.as_deref().unwrap_or("-")),
                audit::printable(&e.detail)
            );
        }
    }
    Ok(())
}

async fn export(
    gw: &Gateway,
    since: &str,
    until: Option<&str>,
    format: ExportFormat,
    user: Option<String>,
    event: Option<String>,
) -> Result<()> {
    let Some(since) = time::parse_utc(since) else {
        bail!("--since: {since:?} is not a UTC date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM:SSZ)");
    };
    let until = match until {
        Some(u) => match time::parse_utc(u) {
            Some(t) => t,
            None => bail!("--until: {u:?} is not a UTC date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM:SSZ)"),
        },
        None => time::now(),
    };
    if until < since {
        bail!("--until is before --since");
    }
    let filter = audit::Filter { user, event, since: Some(since), until: Some(until), ..Default::default() };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if let ExportFormat::Csv = format {
        writeln!(out, "{}", audit::CSV_HEADER)?;
    }
    let mut after = 0;
    loop {
        let page = audit::page_after(&gw.db, &filter, after, PAGE).await?;
        for rec in &page {
            match format {
                ExportFormat::Jsonl => writeln!(out, "{}", sinks::json_line(rec))?,
                ExportFormat::Csv => writeln!(out, "{}", audit::csv_row(rec))?,
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.id,
            _ => break,
        }
    }
    out.flush()?;
    Ok(())
}
