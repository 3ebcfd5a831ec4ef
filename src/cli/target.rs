//! `gatehouse target …`: Targets, their host keys and grants. Every change goes through `gatehouse_core::admin`,
//! which audits it with the actor `cli`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_core::Gateway;
use gatehouse_core::admin::{self, Actor};
use gatehouse_core::targets::{self, CredentialKind, Grantee, NewTarget};

use super::read_secret_stdin;

#[derive(Subcommand, Debug)]
pub enum TargetCmd {
    /// Add a target with the credential the gateway uses to log in to it.
    #[command(group(clap::ArgGroup::new("credential").required(true).args(["key_file", "password_stdin"])))]
    Add {
        name: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 22, value_parser = clap::value_parser!(u16).range(1..))]
        port: u16,
        /// The account on the target.
        #[arg(long)]
        user: String,
        /// OpenSSH private key the gateway logs in with.
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Read the target password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Pin this host key ("ssh-ed25519 AAAA…"); without it the first key seen is pinned.
        #[arg(long, value_name = "KEY")]
        host_key: Option<String>,
    },
    /// List targets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Grant a target to a user or a group.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["user", "group"])))]
    Grant {
        name: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Revoke a grant.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["user", "group"])))]
    Revoke {
        name: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Pin (or re-pin) a target's host key.
    PinHostKey { name: String, key: String },
    /// Delete a target and its grants.
    Delete { name: String },
}

pub async fn run(gw: &Gateway, cmd: TargetCmd) -> Result<()> {
    let db = &gw.db;
    match cmd {
        TargetCmd::Add { name, host, port, user, key_file, password_stdin, host_key } => {
            let (kind, credential) = match (key_file, password_stdin) {
                (Some(path), _) => (
                    CredentialKind::Key,
                    zeroize::Zeroizing::new(
                        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
                    ),
                ),
                (None, true) => (CredentialKind::Password, zeroize::Zeroizing::new(read_secret_stdin("password")?)),
                (None, false) => bail!("give --key-file or --password-stdin"),
            };
            admin::targets::create(
                gw,
                &Actor::Cli,
                NewTarget {
                    name: &name,
                    host: &host,
                    port,
                    username: &user,
                    credential_kind: kind,
                    credential: &credential,
                    host_key: host_key.as_deref(),
                },
            )
            .await?;
            println!("target {name} added ({user}@{host}:{port})");
        }
        TargetCmd::List { json } => {
            let list = targets::list(db).await?;
            if json {
                let mut v = Vec::new();
                for t in &list {
                    let (users, groups) = targets::grantees(db, t.id).await?;
                    v.push(serde_json::json!({"target": t, "users": users, "groups": groups}));
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{:<20} {:<32} {:<9} {:<8} GRANTED TO", "NAME", "ADDRESS", "AUTH", "HOST KEY");
                for t in &list {
                    let (users, groups) = targets::grantees(db, t.id).await?;
                    let who: Vec<String> =
                        users.into_iter().chain(groups.into_iter().map(|g| format!("@{g}"))).collect();
                    println!(
                        "{:<20} {:<32} {:<9} {:<8} {}",
                        t.name,
                        format!("{}@{}:{}", t.username, t.host, t.port),
                        match t.credential_kind {
                            CredentialKind::Key => "key",
                            CredentialKind::Password => "password",
                        },
                        if t.host_key.is_some() { "pinned" } else { "tofu" },
                        who.join(",")
                    );
                }
            }
        }
        TargetCmd::Grant { name, user, group } => {
            let who = grantee(&user, &group)?;
            admin::targets::grant(gw, &Actor::Cli, &name, who).await?;
            println!("{name} granted to {}", describe(&user, &group));
        }
        TargetCmd::Revoke { name, user, group } => {
            let who = grantee(&user, &group)?;
            admin::targets::revoke(gw, &Actor::Cli, &name, who).await?;
            println!("{name} revoked from {}", describe(&user, &group));
        }
        TargetCmd::PinHostKey { name, key } => {
            admin::targets::pin_host_key(gw, &Actor::Cli, &name, &key).await?;
            println!("host key of {name} pinned");
        }
        TargetCmd::Delete { name } => {
            admin::targets::delete(gw, &Actor::Cli, &name).await?;
            println!("target {name} deleted");
        }
    }
    Ok(())
}

fn grantee<'a>(user: &'a Option<String>, group: &'a Option<String>) -> Result<Grantee<'a>> {
    match (user, group) {
        (Some(u), None) => Ok(Grantee::User(u)),
        (None, Some(g)) => Ok(Grantee::Group(g)),
        _ => bail!("give exactly one of --user or --group"),
    }
}

fn describe(user: &Option<String>, group: &Option<String>) -> String {
    match (user, group) {
        (Some(u), _) => format!("user {u}"),
        (_, Some(g)) => format!("group {g}"),
        _ => String::new(),
    }
}
