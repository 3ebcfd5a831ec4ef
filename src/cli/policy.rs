//! `gatehouse policy …`: The two-factor policy, globally and per group. Every change goes through `gatehouse_core::admin`,
//! which audits it with the actor `cli`.

use anyhow::Result;
use clap::Subcommand;
use gatehouse_core::admin::{self, Actor};
use gatehouse_core::factors::MethodSet;
use gatehouse_core::users;
use gatehouse_core::{Gateway, groups, policy};

use super::Switch;

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Show the global policy and every group's.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Force a second factor for everyone, for one group's members, or for every
    /// administrator (--admins). A single user's override is `gatehouse user force-2fa`.
    #[command(name = "force-2fa")]
    Force2fa {
        state: Switch,
        #[arg(long, conflicts_with = "admins")]
        group: Option<String>,
        /// The administrators' scope: every administrator must use 2FA, whatever their own
        /// override says.
        #[arg(long)]
        admins: bool,
    },
    /// Allowed methods, globally or for one group ("inherit" clears a group's own set).
    Methods {
        /// Comma-separated: totp,backup-code,keyword,email,yubikey,duo,radius,webauthn
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

pub async fn run(gw: &Gateway, cmd: PolicyCmd) -> Result<()> {
    let db = &gw.db;
    match cmd {
        PolicyCmd::Show { json } => {
            let p = policy::load(db).await?;
            let groups = groups::list(db).await?;
            let all = users::list(db).await?;
            let exempt: Vec<String> = all.iter().filter(|u| u.exempt_2fa).map(|u| u.name.clone()).collect();
            // Users with their own override, in name order.
            let overrides: Vec<(String, &str)> = all
                .iter()
                .filter(|u| u.force_2fa.is_some())
                .map(|u| (u.name.clone(), admin::users::override_word(u.force_2fa)))
                .collect();
            if json {
                let user_overrides: serde_json::Map<String, serde_json::Value> =
                    overrides.iter().map(|(n, w)| (n.clone(), serde_json::Value::from(*w))).collect();
                let v = serde_json::json!({
                    "global": p, "groups": groups, "user_overrides": user_overrides, "exempt_users": exempt,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("force 2FA (global): {}", if p.force_2fa { "on" } else { "off" });
                println!("force 2FA (admins): {}", if p.force_2fa_admins { "on" } else { "off" });
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
                for (name, word) in overrides {
                    println!("user  {name:<18} force 2FA: {word}");
                }
                for u in exempt {
                    println!("WARNING: user {u} is exempt from the second factor");
                }
            }
        }
        PolicyCmd::Force2fa { state, group, admins } => {
            let scope = match &group {
                Some(g) => {
                    admin::groups::set_force_2fa(gw, &Actor::Cli, g, state.is_on()).await?;
                    format!("group {g}")
                }
                None if admins => {
                    admin::policy::set_force_2fa_admins(gw, &Actor::Cli, state.is_on()).await?;
                    "administrators".into()
                }
                None => {
                    admin::policy::set_force_2fa(gw, &Actor::Cli, state.is_on()).await?;
                    "global".into()
                }
            };
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
