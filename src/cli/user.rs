//! `gatehouse user …`: Users: add, list, show, password, lock, delete, keys, exemption, force-2FA override, administrator flag. Every change goes through `gatehouse_core::admin`,
//! which audits it with the actor `cli`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_core::admin::{self, Actor, users::NewAccount};
use gatehouse_core::factors::{self};
use gatehouse_core::users;
use gatehouse_core::{Gateway, groups, policy, ssh_keys, time};

use super::{Override, Switch, read_secret_stdin};

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
    /// Force a second factor on this user (on), do not force one even where a group or
    /// the global switch would (off), or follow them (inherit). Administrators stay forced
    /// while the administrators' scope is on.
    #[command(name = "force-2fa")]
    Force2fa { name: String, state: Override },
    /// Grant (on) or remove (off) the administrator flag.
    Admin { name: String, state: Switch },
    /// Where the user's password is checked: `local` (Gatehouse) or `radius` (the
    /// `[radius]` servers, with `radius.primary = true`).
    Store { name: String, store: String },
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub async fn run(gw: &Gateway, cmd: UserCmd) -> Result<()> {
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
        UserCmd::List { json } => list(gw, json).await?,
        UserCmd::Show { name, json } => show(gw, &name, json).await?,
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
        UserCmd::Store { name, store } => {
            let store: gatehouse_core::users::Store = store.parse()?;
            admin::users::set_store(gw, &Actor::Cli, &name, store).await?;
            println!("{name}: {}", store.describe());
        }
        UserCmd::Exempt { name, state } => {
            admin::users::set_exempt(gw, &Actor::Cli, &name, state.is_on()).await?;
            if state.is_on() {
                println!("WARNING: {name} is now exempt from the second factor");
            } else {
                println!("{name} is no longer exempt from the second factor");
            }
        }
        UserCmd::Force2fa { name, state } => {
            admin::users::set_force_2fa(gw, &Actor::Cli, &name, state.value()).await?;
            println!("force 2FA (user {name}): {}", admin::users::override_word(state.value()));
            let u = users::get(&gw.db, &name).await?;
            println!("{}", policy::resolve(&gw.db, &u).await?.reason_for_admin(&u));
        }
        UserCmd::Admin { name, state } => {
            admin::users::set_admin(gw, &Actor::Cli, &name, state.is_on()).await?;
            println!("administrator flag of {name}: {}", if state.is_on() { "on" } else { "off" });
        }
    }
    Ok(())
}

/// `user list`: one line per user, or JSON.
async fn list(gw: &Gateway, json: bool) -> Result<()> {
    let db = &gw.db;
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
    Ok(())
}

/// `user show NAME`: everything an administrator needs to know about one account.
async fn show(gw: &Gateway, name: &str, json: bool) -> Result<()> {
    let db = &gw.db;
    let u = users::get(db, name).await?;
    let groups: Vec<String> = groups::of_user(db, u.id).await?.into_iter().map(|g| g.name).collect();
    let keys = ssh_keys::of_user(db, u.id).await?;
    let factors = factors::describe(db, u.id).await?;
    let resolution = policy::resolve(db, &u).await?;
    let requirement = format!("{:?}", resolution.requirement(&u));
    let why = resolution.reason_for_admin(&u);
    let lock = gatehouse_core::lockout::current(db, &u.name, "").await?;
    if json {
        let v = serde_json::json!({
            "user": u, "groups": groups, "keys": keys, "factors": factors,
            "requirement": requirement,
            "why_2fa": why,
            "locked_until": lock.map(|l| l.until()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("name:         {}", u.name);
        println!("store:        {}", u.store.describe());
        if let Some(dn) = &u.directory_dn {
            println!("directory dn: {dn}");
        }
        if u.directory_disabled {
            println!("disabled:     YES — the directory no longer admits this user");
        }
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
        println!("force 2FA:    {}", admin::users::override_word(u.force_2fa));
        println!("2FA:          {requirement}");
        println!("why 2FA:      {why}");
        println!("created:      {}", time::format_utc(u.created_at));
        for k in keys {
            println!("key:          {} {} {}", k.algorithm, k.fingerprint, k.comment);
        }
        for f in factors {
            println!("factor:       {} ({}), enrolled {}", f.method, f.label, time::format_utc(f.created_at));
        }
    }
    Ok(())
}
