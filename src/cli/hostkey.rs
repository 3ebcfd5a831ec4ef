//! `gatehouse hostkey …`: the installation's SSH host keys and their rotation. Rotation
//! and retirement go through `gatehouse_core::admin::host_keys`, which audits them with
//! the actor `cli`; the SSH frontend supplies the key format (`OpenSshKeys`).

use anyhow::Result;
use clap::Subcommand;
use gatehouse_core::admin::{self, Actor};
use gatehouse_core::host_keys::KeyFormat;
use gatehouse_core::{Gateway, host_keys, time};
use gatehouse_server::OpenSshKeys;

#[derive(Subcommand, Debug)]
pub enum HostkeyCmd {
    /// The stored host keys: algorithm, state (active, or next during a rotation), SHA256
    /// fingerprint, created.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start a rotation: add a next key per algorithm, which every node presents and
    /// announces to clients (OpenSSH UpdateHostKeys) beside the active one once restarted.
    Rotate,
    /// End a rotation: the next keys become active, the old ones are deleted.
    Retire,
}

pub async fn run(gw: &Gateway, cmd: HostkeyCmd) -> Result<()> {
    match cmd {
        HostkeyCmd::List { json } => {
            if !gw.config.ssh.host_key_files.is_empty() {
                eprintln!("note: ssh.host_key_files is set; the gateway presents those files, not these keys");
            }
            let keys = host_keys::list(gw).await?;
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "algorithm": k.algorithm,
                            "state": k.state.as_str(),
                            "fingerprint": OpenSshKeys.fingerprint(&k.private_key),
                            "created_at": k.created_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!("{:<12} {:<7} {:<52} CREATED", "ALGORITHM", "STATE", "FINGERPRINT");
            for key in keys {
                println!(
                    "{:<12} {:<7} {:<52} {}",
                    key.algorithm,
                    key.state.as_str(),
                    OpenSshKeys.fingerprint(&key.private_key),
                    time::format_utc(key.created_at)
                );
            }
        }
        HostkeyCmd::Rotate => {
            for key in admin::host_keys::rotate(gw, &Actor::Cli, &OpenSshKeys).await? {
                println!("next {} key {}", key.algorithm, key.fingerprint);
            }
            println!(
                "restart every node to present the new key; clients with UpdateHostKeys learn it when they log in. \
                 Once they have, `gatehouse hostkey retire`."
            );
        }
        HostkeyCmd::Retire => {
            for key in admin::host_keys::retire(gw, &Actor::Cli, &OpenSshKeys).await? {
                match &key.retired {
                    Some(old) => println!("{} key {} active, {old} deleted", key.algorithm, key.fingerprint),
                    None => println!("{} key {} active", key.algorithm, key.fingerprint),
                }
            }
            println!("restart every node to stop presenting the old key.");
        }
    }
    Ok(())
}
