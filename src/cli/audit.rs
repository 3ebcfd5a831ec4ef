//! `gatehouse audit …`: Reading the audit log. Every change goes through `gatehouse_core::admin`,
//! which audits it with the actor `cli`.

use anyhow::Result;
use clap::Args as ClapArgs;
use gatehouse_core::audit;
use gatehouse_core::{Gateway, time};

#[derive(ClapArgs, Debug)]
pub struct AuditArgs {
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

pub async fn run(gw: &Gateway, a: AuditArgs) -> Result<()> {
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
