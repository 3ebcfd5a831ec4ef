//! `gatehouse recordings …`: the index of session recordings and their retention.

use anyhow::Result;
use clap::Subcommand;
use gatehouse_core::recordings::{self, retention};
use gatehouse_core::{Gateway, time};

#[derive(Subcommand, Debug)]
pub enum RecordingsCmd {
    /// The newest recordings, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Moves this node's finished recordings still on its disk to the [recordings.s3]
    /// bucket now, as the gateway does every minute.
    Upload,
    /// Applies the retention limits ([recordings] max_age_days, max_total_gb) now, as
    /// the gateway does every minute, and lists what was deleted.
    Prune {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(gw: &Gateway, cmd: RecordingsCmd) -> Result<()> {
    match cmd {
        RecordingsCmd::List { limit, json } => {
            let list = recordings::list(&gw.db, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in list {
                    let ended = r.ended_at.map(time::format_utc).unwrap_or_else(|| "running".into());
                    println!(
                        "{:>6}  {:<16} {:<16} {}  {:<20} {:>12} bytes  {}",
                        r.id,
                        r.user_name,
                        r.target_name,
                        time::format_utc(r.started_at),
                        ended,
                        r.size,
                        if r.in_bucket { format!("{} (in the bucket)", r.node) } else { r.node.clone() }
                    );
                }
            }
        }
        RecordingsCmd::Upload => {
            let Some(bucket) = &gw.recording_bucket else {
                anyhow::bail!("no bucket is configured ([recordings.s3])");
            };
            bucket.ready().await?;
            let moved = recordings::upload_pending_now(gw).await?;
            println!("{moved} recording(s) moved to the bucket '{}'", bucket.name());
        }
        RecordingsCmd::Prune { json } => {
            let deleted = retention::prune(gw).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&deleted)?);
            } else if deleted.is_empty() {
                println!("no recording is past the retention limits");
            } else {
                for d in &deleted {
                    let r = &d.recording;
                    println!(
                        "deleted recording {} ({} on {}, {} bytes): {}",
                        r.id, r.user_name, r.target_name, r.size, d.reason
                    );
                }
            }
        }
    }
    Ok(())
}
