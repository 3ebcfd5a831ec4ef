//! Enrollment mode end to end: a user forced to use 2FA with nothing enrolled logs in,
//! reaches no target, enrolls a TOTP from the terminal (QR code and manual key, confirmed
//! by a code computed by oathtool), and at the next login passes the gate with it and
//! gets the menu.

mod common;
mod shell_support;

use common::{Ssh, describe, stderr, stdout, totp_at};
use shell_support::{MUST, bastion, ssh_exit};

#[test]
fn forced_user_enrolls_from_the_terminal_then_gets_the_menu() {
    let b = bastion();
    b.add_granted("web1");
    b.gw.cli_ok(&["policy", "force-2fa", "on"]);

    // No target is reachable before enrolling, not even by naming it.
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).run(&["web1", "echo should-not-run"]);
    assert_eq!(out.status.code(), Some(255), "{}\n{}", describe(&out), b.gw.log());
    assert!(stderr(&out).contains("second factor must be enrolled"), "{}", describe(&out));
    assert!(!b.sshd.log().contains("Connection from"), "the target was never contacted");

    let body = format!(
        r#"{MUST}
must "no second factor is"
must "Enroll an authenticator app"
send "2\r"
must "Web UI: http://127.0.0.1:"
send "1\r"
must "Scan this code"
expect {{
    -re {{by hand[^\n]*\n\s*\n\s+([A-Z2-7 ]+)\r}} {{ set key [string map {{" " ""}} $expect_out(1,string)] }}
    timeout {{ puts "\nEXPECT-TIMEOUT waiting for the key"; exit 3 }}
}}
must "Code from the app"
send "000000\r"
must "does not match"
set now [clock seconds]
set code [exec oathtool --totp -b --now @$now $key]
puts "\nENROLLED-KEY $key AT $now"
send "$code\r"
must "Authenticator enrolled"
finish
"#
    );
    let out = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).interact(&[], &body);
    let transcript = stdout(&out);
    assert_eq!(ssh_exit(&out), Some(0), "{}\n{}", describe(&out), b.gw.log());
    assert!(transcript.contains('▀') || transcript.contains('▄'), "a QR code drawn with half blocks");
    let line = transcript.lines().find(|l| l.starts_with("ENROLLED-KEY ")).expect("the script printed the key");
    let mut words = line.split_whitespace().skip(1);
    let secret = words.next().unwrap().to_string();
    let at: u64 = words.nth(1).unwrap().parse().unwrap();
    assert!(b.audit("factor.enroll").contains("success"));

    // Next login: the gate asks for the new factor, then the menu shows the target.
    // The step after the one used to enroll (a used step is never accepted again).
    let code = totp_at(&secret, (at / 30 + 1) * 30);
    let client = Ssh::new(b.gw.ssh_port, "alice").identity(&b.key).on_prompt("code", &code);
    let body = format!(
        r#"{MUST}
must "1  web1"
send "exit\r"
finish
"#
    );
    let out = client.interact(&[], &body);
    assert_eq!(ssh_exit(&out), Some(0), "{}\nprompts: {:?}\n{}", describe(&out), client.prompts_seen(), b.gw.log());
    assert!(client.prompts_seen().iter().any(|p| p.contains("code")), "{:?}", client.prompts_seen());
}
