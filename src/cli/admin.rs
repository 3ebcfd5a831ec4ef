//! Administrative commands: users, groups, policy, targets and grants, audit log.
//! Every change is audited with the actor `cli`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Subcommand};
use gatehouse_core::admin::{self, Actor, users::NewAccount};
use gatehouse_core::audit;
use gatehouse_core::factors::{self, MethodSet};
use gatehouse_core::targets::{self, CredentialKind, Grantee, NewTarget};
use gatehouse_core::users;
use gatehouse_core::{Gateway, groups, policy, ssh_keys, time};

use super::{Switch, read_secret_stdin};

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user.
    Add {
        name: String,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        #[arg(long, value_name = "ADDR")]
        email: Option<String>,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one user: flags, groups, keys, factors, 2FA requirement.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (read from standard input).
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Lock an account (no login by any means).
    Lock { name: String },
    /// Unlock an account, and lift a lockout after failed attempts.
    Unlock { name: String },
    /// Delete a user with their keys, factors, memberships and grants.
    Delete { name: String },
    /// Add an SSH public key for public-key logins.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["key", "key_file"])))]
    AddKey {
        name: String,
        /// The key line, e.g. "ssh-ed25519 AAAA… comment".
        #[arg(long)]
        key: Option<String>,
        /// A file holding one key line (e.g. ~/.ssh/id_ed25519.pub).
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
    },
    /// Exempt a user from the second factor (on) or not (off). Audited.
    Exempt { name: String, state: Switch },
    /// Grant (on) or remove (off) the administrator flag.
    Admin { name: String, state: Switch },
}

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

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Show the global policy and every group's.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Force a second factor for everyone, or for one group's members.
    #[command(name = "force-2fa")]
    Force2fa {
        state: Switch,
        #[arg(long)]
        group: Option<String>,
    },
    /// Allowed methods, globally or for one group ("inherit" clears a group's own set).
    Methods {
        /// Comma-separated: totp,backup-code,keyword,email,yubikey,duo,radius
        methods: String,
        #[arg(long)]
        group: Option<String>,
    },
    /// How many backup codes a new set has.
    BackupCodes { count: u32 },
    /// Days a forced user without a factor may enroll one with the password alone, after
    /// the account is created or its factors are reset.
    EnrollmentWindow { days: u32 },
}

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

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub async fn user(gw: &Gateway, cmd: UserCmd) -> Result<()> {
    let db = &gw.db;
    match cmd {
        UserCmd::Add { name, password_stdin, admin, email } => {
            let password = if password_stdin { Some(read_secret_stdin("password")?) } else { None };
            let new = NewAccount {
                name: &name,
                password: password.as_deref(),
                email: email.as_deref(),
                is_admin: admin,
                one_time_password: false,
            };
            admin::users::create(gw, &Actor::Cli, new).await?;
            println!("user {name} created");
        }
        UserCmd::List { json } => {
            let list = users::list(db).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<24} {:<6} {:<7} {:<7} {:<12} EMAIL", "NAME", "ADMIN", "LOCKED", "EXEMPT", "LAST METHOD");
                for u in list {
                    println!(
                        "{:<24} {:<6} {:<7} {:<7} {:<12} {}",
                        u.name,
                        yes(u.is_admin),
                        yes(u.locked),
                        yes(u.exempt_2fa),
                        u.last_method.map(|m| m.as_str()).unwrap_or("-"),
                        u.email.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        UserCmd::Show { name, json } => {
            let u = users::get(db, &name).await?;
            let groups: Vec<String> = groups::of_user(db, u.id).await?.into_iter().map(|g| g.name).collect();
            let keys = ssh_keys::of_user(db, u.id).await?;
            let factors = factors::describe(db, u.id).await?;
            let requirement = format!("{:?}", policy::requirement(db, &u).await?);
            let lock = gatehouse_core::lockout::current(db, &u.name, "").await?;
            if json {
                let v = serde_json::json!({
                    "user": u, "groups": groups, "keys": keys, "factors": factors,
                    "requirement": requirement,
                    "locked_until": lock.map(|l| l.until()),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("name:         {}", u.name);
                println!("email:        {}", u.email.as_deref().unwrap_or("-"));
                println!("admin:        {}", yes(u.is_admin));
                println!("locked:       {}", yes(u.locked));
                if let Some(l) = lock {
                    println!("locked out:   until {} (failed attempts)", time::format_utc(l.until()));
                }
                if u.exempt_2fa {
                    println!("exempt:       YES — this user is never asked for a second factor");
                }
                println!("last method:  {}", u.last_method.map(|m| m.as_str()).unwrap_or("-"));
                println!("groups:       {}", if groups.is_empty() { "-".into() } else { groups.join(", ") });
                println!("2FA:          {requirement}");
                println!("created:      {}", time::format_utc(u.created_at));
                for k in keys {
                    println!("key:          {} {} {}", k.algorithm, k.fingerprint, k.comment);
                }
                for f in factors {
                    println!("factor:       {} ({}), enrolled {}", f.method, f.label, time::format_utc(f.created_at));
                }
            }
        }
        UserCmd::Passwd { name, .. } => {
            let password = read_secret_stdin("password")?;
            let revoked = admin::users::set_password(gw, &Actor::Cli, &name, &password, false).await?;
            println!("password of {name} changed; {revoked} application passcodes revoked");
        }
        UserCmd::Lock { name } => {
            admin::users::lock(gw, &Actor::Cli, &name).await?;
            println!("user {name} locked");
        }
        UserCmd::Unlock { name } => {
            admin::users::unlock(gw, &Actor::Cli, &name).await?;
            println!("user {name} unlocked");
        }
        UserCmd::Delete { name } => {
            admin::users::delete(gw, &Actor::Cli, &name).await?;
            println!("user {name} deleted");
        }
        UserCmd::AddKey { name, key, key_file } => {
            let line = match (key, key_file) {
                (Some(k), _) => k,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .lines()
                    .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .unwrap_or("")
                    .to_string(),
                (None, None) => bail!("give --key or --key-file"),
            };
            let k = admin::users::add_key(gw, &Actor::Cli, &name, &line).await?;
            println!("key {} added for {name}", k.fingerprint);
        }
        UserCmd::Exempt { name, state } => {
            admin::users::set_exempt(gw, &Actor::Cli, &name, state.is_on()).await?;
            if state.is_on() {
                println!("WARNING: {name} is now exempt from the second factor");
            } else {
                println!("{name} is no longer exempt from the second factor");
            }
        }
        UserCmd::Admin { name, state } => {
            admin::users::set_admin(gw, &Actor::Cli, &name, state.is_on()).await?;
            println!("administrator flag of {name}: {}", if state.is_on() { "on" } else { "off" });
        }
    }
    Ok(())
}

pub async fn group(gw: &Gateway, cmd: GroupCmd) -> Result<()> {
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

pub async fn policy(gw: &Gateway, cmd: PolicyCmd) -> Result<()> {
    let db = &gw.db;
    match cmd {
        PolicyCmd::Show { json } => {
            let p = policy::load(db).await?;
            let groups = groups::list(db).await?;
            let exempt: Vec<String> =
                users::list(db).await?.into_iter().filter(|u| u.exempt_2fa).map(|u| u.name).collect();
            if json {
                let v = serde_json::json!({"global": p, "groups": groups, "exempt_users": exempt});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("force 2FA (global): {}", if p.force_2fa { "on" } else { "off" });
                println!("allowed methods:    {}", p.allowed_methods);
                println!("backup codes:       {} per set", p.backup_code_count);
                for g in groups {
                    println!(
                        "group {:<18} force 2FA: {:<3}  methods: {}",
                        g.name,
                        if g.force_2fa { "on" } else { "off" },
                        g.allowed_methods.map(|s| s.to_string()).unwrap_or_else(|| "(global)".into())
                    );
                }
                for u in exempt {
                    println!("WARNING: user {u} is exempt from the second factor");
                }
            }
        }
        PolicyCmd::Force2fa { state, group } => {
            match &group {
                Some(g) => admin::groups::set_force_2fa(gw, &Actor::Cli, g, state.is_on()).await?,
                None => admin::policy::set_force_2fa(gw, &Actor::Cli, state.is_on()).await?,
            }
            let scope = group.as_deref().map(|g| format!("group {g}")).unwrap_or_else(|| "global".into());
            let s = if state.is_on() { "on" } else { "off" };
            println!("force 2FA ({scope}): {s}");
        }
        PolicyCmd::Methods { methods, group } => {
            match &group {
                Some(g) if methods.trim() == "inherit" => {
                    admin::groups::set_allowed_methods(gw, &Actor::Cli, g, None).await?
                }
                Some(g) => {
                    let set = MethodSet::parse_list(&methods)?;
                    admin::groups::set_allowed_methods(gw, &Actor::Cli, g, Some(&set)).await?
                }
                None => admin::policy::set_allowed_methods(gw, &Actor::Cli, &MethodSet::parse_list(&methods)?).await?,
            }
            let scope = group.as_deref().map(|g| format!("group {g}")).unwrap_or_else(|| "global".into());
            println!("allowed methods ({scope}): {methods}");
        }
        PolicyCmd::BackupCodes { count } => {
            admin::policy::set_backup_code_count(gw, &Actor::Cli, count).await?;
            println!("backup code sets now have {count} codes");
        }
        PolicyCmd::EnrollmentWindow { days } => {
            admin::policy::set_enrollment_window_days(gw, &Actor::Cli, days).await?;
            println!("first-login enrollment window: {days} days");
        }
    }
    Ok(())
}

pub async fn target(gw: &Gateway, cmd: TargetCmd) -> Result<()> {
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

pub async fn audit(gw: &Gateway, a: AuditArgs) -> Result<()> {
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
                e.node,
                e.event,
                e.outcome,
                e.user.as_deref().unwrap_or("-"),
                e.actor.as_deref().unwrap_or("-"),
                e.source.as_deref().unwrap_or("-"),
                audit::printable(&e.detail)
            );
        }
    }
    Ok(())
}
