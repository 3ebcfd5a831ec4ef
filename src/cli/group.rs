//! `gatehouse group …`: Groups and their members. Every change goes through `gatehouse_core::admin`,
//! which audits it with the actor `cli`.

use anyhow::Result;
use clap::Subcommand;
use gatehouse_core::admin::{self, Actor};
use gatehouse_core::{Gateway, groups};

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create a group.
    Add { name: String },
    /// List groups with their policy and members.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Remove a user from a group.
    RemoveMember { group: String, user: String },
    /// Delete a group (its grants go with it).
    Delete { name: String },
}

pub async fn run(gw: &Gateway, cmd: GroupCmd) -> Result<()> {
    let db = &gw.db;
    match cmd {
        GroupCmd::Add { name } => {
            admin::groups::create(gw, &Actor::Cli, &name).await?;
            println!("group {name} created");
        }
        GroupCmd::List { json } => {
            let list = groups::list(db).await?;
            let mut rows = Vec::new();
            for g in list {
                let members = groups::members(db, &g.name).await?;
                rows.push((g, members));
            }
            if json {
                let v: Vec<_> = rows.iter().map(|(g, m)| serde_json::json!({"group": g, "members": m})).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{:<24} {:<10} {:<28} MEMBERS", "NAME", "FORCE 2FA", "METHODS");
                for (g, m) in rows {
                    println!(
                        "{:<24} {:<10} {:<28} {}",
                        g.name,
                        if g.force_2fa { "on" } else { "off" },
                        g.allowed_methods.map(|s| s.to_string()).unwrap_or_else(|| "(global)".into()),
                        m.join(",")
                    );
                }
            }
        }
        GroupCmd::AddMember { group, user } => {
            admin::groups::add_member(gw, &Actor::Cli, &group, &user).await?;

            println!("{user} added to {group}");
        }
        GroupCmd::RemoveMember { group, user } => {
            admin::groups::remove_member(gw, &Actor::Cli, &group, &user).await?;

            println!("{user} removed from {group}");
        }
        GroupCmd::Delete { name } => {
            admin::groups::delete(gw, &Actor::Cli, &name).await?;
            println!("group {name} deleted");
        }
    }
    Ok(())
}
