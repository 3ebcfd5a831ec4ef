//! [`Master`]: a real OpenSSH connection held open in the background (`ssh -M -N`), for
//! tests that change an account while it is logged in and watch the connection end.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{ClientKey, Gw, Ssh};

/// A master connection (`ssh -M -N`) as `user` with `key`, in the background.
pub struct Master {
    child: Child,
    socket: PathBuf,
    port: u16,
    user: String,
}

impl Master {
    /// Logs in with `key` (no second factor must be due) and waits for the control socket.
    pub fn open(gw: &Gw, user: &str, key: &ClientKey) -> Master {
        Master::open_with(gw, user, Ssh::new(gw.ssh_port, user).identity(key))
    }

    /// Logs in with `ssh` (answers for any prompt already set) and waits for the socket.
    pub fn open_with(gw: &Gw, user: &str, ssh: Ssh) -> Master {
        let socket = gw.dir.path().join(format!("mux-{user}"));
        let ssh = ssh.option("ControlMaster=yes").option(&format!("ControlPath={}", socket.display())).arg("-N");
        let mut cmd = ssh.command(&[]);
        let child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("starting ssh -M");
        let master = Master { child, socket, port: gw.ssh_port, user: user.to_string() };
        assert!(
            master.wait_until(Duration::from_secs(30), |m| m.socket.exists()),
            "the master connection did not come up:\n{}",
            gw.log()
        );
        master
    }

    /// A client that goes through the master (and never logs in by itself: no key, no
    /// password, batch mode).
    pub fn client(&self) -> Ssh {
        Ssh::new(self.port, &self.user)
            .option("ControlMaster=no")
            .option(&format!("ControlPath={}", self.socket.display()))
            .option("BatchMode=yes")
            .option("PasswordAuthentication=no")
            .option("KbdInteractiveAuthentication=no")
            .timeout(Duration::from_secs(30))
    }

    pub fn run(&self, remote: &[&str]) -> std::process::Output {
        self.client().run(remote)
    }

    pub fn wait_until(&self, limit: Duration, what: impl Fn(&Master) -> bool) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if what(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Whether the master process has exited (the gateway ended the connection).
    pub fn ended(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
