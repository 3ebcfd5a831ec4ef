//! Sessions that name their target up front and skip the menu: `ssh user@gw TARGET [cmd]`,
//! `ssh user:TARGET@gw`, and subsystems (`sftp user:TARGET@gw`, modern `scp`). The target's
//! output and exit status go straight back to the user's client; a refusal is one line on
//! stderr and exit status 255, as `ssh` itself reports a failed connection.

use gatehouse_core::Gateway;

use crate::visit::{Request, visit};
use crate::{Output, Terminal, Visitor};

/// Runs `request` on `target` and returns the exit status to report.
pub async fn run(gw: &Gateway, visitor: &Visitor, target: &str, request: Request, term: &mut Terminal) -> u32 {
    match visit(gw, visitor, target, request, term).await {
        Ok(ending) => {
            let status = ending.exit_status();
            if status == 255 {
                let line = format!("gatehouse: session {}\r\n", ending.describe());
                let _ = term.output.send(Output::Stderr(line.into_bytes())).await;
            }
            status
        }
        Err(e) => {
            let text = format!("gatehouse: {e}\n").replace('\n', "\r\n");
            let _ = term.output.send(Output::Stderr(text.into_bytes())).await;
            255
        }
    }
}
