//! `gatehouse factor …`: enroll and remove second factors from the command line (scripts,
//! and recovery for a user who lost their device).

use anyhow::{Result, bail};
use clap::Subcommand;
use gatehouse_core::admin::{self, Actor};
use gatehouse_core::audit::{AuditEvent, AuditKind, Outcome};
use gatehouse_core::factors::{self, Method, backup_codes, duo, email, keyword, radius, ssh_sk, totp, yubikey};
use gatehouse_core::{Gateway, mail, policy, time, users};

use super::read_secret_stdin;

#[derive(Subcommand, Debug)]
pub enum FactorCmd {
    /// TOTP (authenticator app).
    #[command(subcommand)]
    Totp(TotpCmd),
    /// Make a new set of backup codes (voids the old set) and print them once.
    BackupCodes { user: String },
    /// Set the access keyword (read from standard input).
    Keyword {
        user: String,
        #[arg(long, required = true)]
        stdin: bool,
    },
    /// RADIUS (the answer is checked by the servers of the [radius] config table).
    #[command(subcommand)]
    Radius(RadiusCmd),
    /// Duo (checked by Duo's Auth API, the [duo] config table).
    #[command(subcommand)]
    Duo(DuoCmd),
    /// Email codes and Authorize links (sent through the [email] SMTP relay).
    #[command(subcommand)]
    Email(EmailCmd),
    /// YubiKey OTP (checked by YubiCloud or the servers of the [yubikey] config table).
    #[command(subcommand)]
    Yubikey(YubikeyCmd),
    /// Security keys used as SSH keys (sk-ssh-ed25519@openssh.com,
    /// sk-ecdsa-sha2-nistp256@openssh.com): a second public-key login at the SSH gate.
    #[command(subcommand)]
    SshSk(SshSkCmd),
    /// List a user's factors.
    List {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove one of a user's factors.
    Remove { user: String, method: String },
    /// Remove every factor and backup code of a user and open a new first-login
    /// enrollment window (a user who lost their phone, or whose window is over).
    Reset { user: String },
}

#[derive(Subcommand, Debug)]
pub enum TotpCmd {
    /// Enroll a new TOTP seed (replacing any) and print its otpauth:// URI.
    Enroll { user: String },
}

#[derive(Subcommand, Debug)]
pub enum RadiusCmd {
    /// Enroll RADIUS for a user (replacing any enrollment).
    Enroll {
        user: String,
        /// The user name the RADIUS server knows, when it differs from the Gatehouse name.
        #[arg(long, value_name = "NAME")]
        radius_user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DuoCmd {
    /// Enroll Duo for a user (replacing any enrollment); their devices are enrolled at Duo.
    Enroll {
        user: String,
        /// The user name Duo knows, when it differs from the Gatehouse name.
        #[arg(long, value_name = "NAME")]
        duo_user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum EmailCmd {
    /// Mail a confirmation code to ADDRESS; `email confirm` with that code enrolls it.
    Enroll { user: String, address: String },
    /// Enroll the address that CODE was mailed to (replacing any earlier address).
    Confirm { user: String, code: String },
}

#[derive(Subcommand, Debug)]
pub enum SshSkCmd {
    /// Register a security key's public key (one line of its `.pub` file) as a second
    /// factor; it never serves as a login key.
    Add {
        user: String,
        /// The public key line, e.g. 'sk-ssh-ed25519@openssh.com AAAA… comment'.
        key: String,
        /// A name for the key (its comment when not given).
        #[arg(long)]
        name: Option<String>,
        /// Refuse signatures without user verification (the key's PIN or fingerprint).
        #[arg(long)]
        verify_required: bool,
    },
    /// List a user's security keys.
    List {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove one of a user's security keys by its id (see `list`).
    Remove { user: String, id: i64 },
}

/// The attempt id that binds a confirmation started on the command line to its confirm.
const CLI_ATTEMPT: &str = "cli";

#[derive(Subcommand, Debug)]
pub enum YubikeyCmd {
    /// Bind a user's YubiKey (replacing any) by one OTP from it, checked with the
    /// validation server first; the OTP is spent and cannot log in afterwards.
    Enroll {
        user: String,
        /// An OTP the key typed when touched (32-48 modhex characters).
        otp: String,
    },
}

async fn audit(gw: &Gateway, kind: AuditKind, user: &str, detail: &str) -> Result<()> {
    Ok(gw.audit(AuditEvent::new(kind, Outcome::Success).actor("cli").user(user).detail(detail)).await?)
}

pub async fn run(gw: &Gateway, cmd: FactorCmd) -> Result<()> {
    let db = &gw.db;
    match cmd {
        FactorCmd::Totp(TotpCmd::Enroll { user }) => {
            let u = users::get(db, &user).await?;
            let seed = totp::NewSeed::generate();
            totp::enroll(gw, u.id, &seed, None).await?;
            audit(gw, AuditKind::FactorEnroll, &user, "totp").await?;
            println!("{}", seed.uri(&u.name));
        }
        FactorCmd::BackupCodes { user } => {
            let u = users::get(db, &user).await?;
            let n = policy::load(db).await?.backup_code_count;
            let codes = backup_codes::regenerate(db, u.id, n).await?;
            audit(gw, AuditKind::FactorEnroll, &user, "backup-code").await?;
            for c in codes {
                println!("{c}");
            }
        }
        FactorCmd::Keyword { user, .. } => {
            let u = users::get(db, &user).await?;
            let kw = read_secret_stdin("keyword")?;
            keyword::set(gw, u.id, &kw).await?;
            audit(gw, AuditKind::FactorEnroll, &user, "keyword").await?;
            println!("access keyword of {user} set");
        }
        FactorCmd::Radius(RadiusCmd::Enroll { user, radius_user }) => {
            let u = users::get(db, &user).await?;
            let name = radius::enroll(gw, &u, radius_user.as_deref()).await?;
            audit(gw, AuditKind::FactorEnroll, &user, &format!("radius as {name}")).await?;
            if !gw.config.radius.enabled() {
                eprintln!(
                    "warning: no RADIUS server is configured ([radius] servers); the factor cannot be used until one is"
                );
            }
            println!("RADIUS enrolled for {user} (RADIUS user {name})");
        }
        FactorCmd::Duo(DuoCmd::Enroll { user, duo_user }) => {
            let u = users::get(db, &user).await?;
            let name = duo::enroll(gw, &u, duo_user.as_deref()).await?;
            audit(gw, AuditKind::FactorEnroll, &user, &format!("duo as {name}")).await?;
            if !gw.config.duo.enabled() {
                eprintln!(
                    "warning: Duo is not configured ([duo] integration_key, secret_key, api_host); the factor cannot be used until it is"
                );
            }
            println!("Duo enrolled for {user} (Duo user {name})");
        }
        FactorCmd::Email(cmd) => email(gw, cmd).await?,
        FactorCmd::Yubikey(YubikeyCmd::Enroll { user, otp }) => {
            let u = users::get(db, &user).await?;
            let public_id = match yubikey::enroll(gw, &u, &otp).await {
                Ok(id) => id,
                Err(e) => bail!("YubiKey not enrolled for {user}: {e}"),
            };
            audit(gw, AuditKind::FactorEnroll, &user, &format!("yubikey {public_id}")).await?;
            println!("YubiKey {public_id} enrolled for {user}");
        }
        FactorCmd::SshSk(cmd) => ssh_sk(gw, cmd).await?,
        FactorCmd::List { user, json } => list(gw, &user, json).await?,
        FactorCmd::Remove { user, method } => {
            let m: Method = method.parse()?;
            if !admin::users::remove_factor(gw, &Actor::Cli, &user, m).await? {
                bail!("{user} has no {m} factor");
            }
            println!("{m} removed from {user}");
        }
        FactorCmd::Reset { user } => {
            let reset = admin::users::reset_factors(gw, &Actor::Cli, &user).await?;
            println!(
                "factors of {user} reset ({} methods, {} trusted browsers); they may enroll a new one at their next login",
                reset.methods.len(),
                reset.trusted_browsers
            );
        }
    }
    Ok(())
}

/// `factor email enroll|confirm`: an address is enrolled only once a mailed code came back.
async fn email(gw: &Gateway, cmd: EmailCmd) -> Result<()> {
    let db = &gw.db;
    match cmd {
        EmailCmd::Enroll { user, address } => {
            let u = users::get(db, &user).await?;
            let address = email::start_enrollment(gw, &u, &address, CLI_ATTEMPT).await?;
            audit(
                gw,
                AuditKind::FactorEmailCode,
                &user,
                &format!("confirmation code mailed to {}", mail::mask(&address)),
            )
            .await?;
            println!(
                "A confirmation code went to {address}. Enroll it with: gatehouse factor email confirm {user} CODE"
            );
        }
        EmailCmd::Confirm { user, code } => {
            let u = users::get(db, &user).await?;
            match email::confirm_enrollment(gw, &u, CLI_ATTEMPT, &code).await? {
                Some(address) => {
                    audit(gw, AuditKind::FactorEnroll, &user, &format!("email {}", mail::mask(&address))).await?;
                    println!("email enrolled for {user} ({address})");
                }
                None => bail!(
                    "that code is not right or has expired (after {} wrong codes a new one is needed)",
                    email::MAX_WRONG
                ),
            }
        }
    }
    Ok(())
}

/// `factor ssh-sk add|list|remove`.
async fn ssh_sk(gw: &Gateway, cmd: SshSkCmd) -> Result<()> {
    match cmd {
        SshSkCmd::Add { user, key, name, verify_required } => {
            let k = admin::users::add_ssh_sk_key(
                gw,
                &Actor::Cli,
                &user,
                &key,
                name.as_deref().unwrap_or(""),
                verify_required,
            )
            .await?;
            println!("security key #{} ({} {}) registered for {user}", k.id, k.algorithm, k.fingerprint);
        }
        SshSkCmd::List { user, json } => {
            let u = users::get(&gw.db, &user).await?;
            let keys = ssh_sk::of_user(&gw.db, u.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else if keys.is_empty() {
                println!("{user} has no security key registered");
            } else {
                for k in keys {
                    println!(
                        "#{:<4} {:<20} {} {}{}  added {}  last used {}",
                        k.id,
                        k.name,
                        k.algorithm,
                        k.fingerprint,
                        if k.verify_required { " verify-required" } else { "" },
                        time::format_utc(k.created_at),
                        k.last_used_at.map(time::format_utc).unwrap_or_else(|| "never".into())
                    );
                }
            }
        }
        SshSkCmd::Remove { user, id } => {
            if !admin::users::remove_ssh_sk_key(gw, &Actor::Cli, &user, id).await? {
                bail!("{user} has no security key #{id}");
            }
            println!("security key #{id} removed from {user}");
        }
    }
    Ok(())
}

/// `factor list USER`.
async fn list(gw: &Gateway, user: &str, json: bool) -> Result<()> {
    let db = &gw.db;
    let u = users::get(db, user).await?;
    let list = factors::describe(db, u.id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!("{user} has no second factor enrolled");
    } else {
        for f in list {
            println!(
                "{:<12} {:<20} enrolled {}  last used {}",
                f.method.as_str(),
                f.label,
                time::format_utc(f.created_at),
                f.last_used_at.map(time::format_utc).unwrap_or_else(|| "never".into())
            );
        }
    }
    Ok(())
}
