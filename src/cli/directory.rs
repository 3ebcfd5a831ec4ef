//! `gatehouse directory …`: the `[ldap]` directory: a test bind, a sync on demand, and
//! what the directory says of one user. Through `gatehouse_core::admin::directory`.

use anyhow::{Result, bail};
use clap::Subcommand;
use gatehouse_core::Gateway;
use gatehouse_core::admin::{self, Actor};

#[derive(Subcommand, Debug)]
pub enum DirectoryCmd {
    /// Bind as the search account and read the user base (recorded on the health page).
    Test,
    /// Ask the directory about every directory user now: groups and keys follow it, users
    /// it no longer admits are disabled and their connections end.
    Sync {
        #[arg(long)]
        json: bool,
    },
    /// What the directory holds for one login name (search account; nothing is changed).
    Lookup { name: String },
}

pub async fn run(gw: &Gateway, cmd: DirectoryCmd) -> Result<()> {
    match cmd {
        DirectoryCmd::Test => {
            let result = admin::directory::test(gw, &Actor::Cli).await?;
            if !result.starts_with("OK") {
                bail!("{result}");
            }
            println!("{result}");
        }
        DirectoryCmd::Sync { json } => {
            let r = admin::directory::sync(gw, &Actor::Cli).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} directory user(s) checked, {} disabled, {} enabled again",
                    r.checked, r.disabled, r.enabled
                );
            }
        }
        DirectoryCmd::Lookup { name } => match gatehouse_core::directory::lookup(gw, &name).await {
            Ok(Some(e)) => {
                println!("dn:     {}", e.dn);
                println!("name:   {}", e.name);
                println!("mail:   {}", e.mail.as_deref().unwrap_or("-"));
                for k in &e.ssh_keys {
                    println!("key:    {k}");
                }
                for g in &e.groups {
                    println!("group:  {g}");
                }
            }
            Ok(None) => bail!("the directory admits no user called '{name}'"),
            Err(e) => bail!("the directory did not answer: {e}"),
        },
    }
    Ok(())
}
