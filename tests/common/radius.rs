//! [`Radius`]: a throwaway real FreeRADIUS server on 127.0.0.1, for the `radius` second
//! factor. It runs `freeradius -X` in the foreground with its own config dir, copied from
//! the system's `/etc/freeradius/3.0` and cut down to one virtual server: one `auth`
//! listener on a free UDP port, one client (127.0.0.1 with [`Radius::SECRET`]), PAP, the
//! users below, and a Message-Authenticator in every answer (as servers hardened against
//! BlastRADIUS send; FreeRADIUS 3.2.1 only adds one when the reply asks for it).
//!
//! Users it knows:
//! - `radalice`, password [`Radius::ALICE_PASSWORD`]: Access-Accept.
//! - `carol`: [`Radius::CAROL_FIRST`] gets an Access-Challenge with the Reply-Message
//!   [`Radius::CAROL_QUESTION`] and a State; answering with that State and
//!   [`Radius::CAROL_PIN`] gets Access-Accept. Anything else: Access-Reject.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::kill_child;
use super::servers::read_or_empty;

const FREERADIUS: &str = "/usr/sbin/freeradius";
const SYSTEM_CONFIG: &str = "/etc/freeradius/3.0";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: u32 = 4;
/// Modules the test server loads; the others (EAP with its certificates, ntlm_auth, …)
/// are not needed.
const MODULES: &[&str] = &["always", "pap", "files", "expr", "attr_filter"];

/// A running FreeRADIUS; dropping it kills the server and deletes its dir.
pub struct Radius {
    pub port: u16,
    pub dir: TempDir,
    child: Option<Child>,
}

impl Radius {
    pub const SECRET: &'static str = "gatehouse-test-secret";
    pub const ALICE_PASSWORD: &'static str = "radius-pass";
    pub const CAROL_FIRST: &'static str = "first-step";
    pub const CAROL_QUESTION: &'static str = "Enter the PIN shown on your token";
    pub const CAROL_PIN: &'static str = "4242";

    /// Copies the system config, writes the test site, clients and users, and starts
    /// the server (with a new port when the one picked was taken meanwhile).
    pub fn start() -> Radius {
        assert!(Path::new(FREERADIUS).exists(), "{FREERADIUS} is missing: apt-get install freeradius");
        let dir = tempfile::Builder::new().prefix("gatehouse-radius-").tempdir().expect("creating a temp dir");
        let conf = dir.path().join("raddb");
        copy_config(&conf);
        let mut radius = Radius { port: 0, dir, child: None };
        for attempt in 1..=START_ATTEMPTS {
            radius.port = free_udp_port();
            radius.write_site();
            if radius.spawn_and_wait(attempt) {
                return radius;
            }
            let log = radius.log();
            if !log.contains("in use") || attempt == START_ATTEMPTS {
                panic!("freeradius did not start:\n{log}");
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// `127.0.0.1:PORT`, as the gateway's `[radius] servers` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("raddb")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("radiusd.log")
    }

    fn write_site(&self) {
        let site = format!(
            r#"server default {{
listen {{
	type = auth
	ipaddr = 127.0.0.1
	port = {port}
}}
authorize {{
	update reply {{
		Message-Authenticator := 0x00000000000000000000000000000000
	}}
	if (&User-Name == "carol") {{
		if (!&State) {{
			if (&User-Password == "{first}") {{
				update reply {{
					Reply-Message := "{question}"
					State := 0x676174652d73746570
				}}
				update control {{
					Response-Packet-Type := Access-Challenge
				}}
				handled
			}}
			reject
		}}
		if (&State == 0x676174652d73746570 && &User-Password == "{pin}") {{
			update control {{
				Auth-Type := Accept
			}}
			ok
		}}
		else {{
			reject
		}}
	}}
	else {{
		files
		pap
	}}
}}
authenticate {{
	Auth-Type PAP {{
		pap
	}}
}}
post-auth {{
	Post-Auth-Type REJECT {{
		ok
	}}
}}
}}
"#,
            port = self.port,
            first = Radius::CAROL_FIRST,
            question = Radius::CAROL_QUESTION,
            pin = Radius::CAROL_PIN,
        );
        std::fs::write(self.conf_dir().join("sites-enabled/gatehouse-test"), site).expect("writing the test site");
    }

    /// Spawns `freeradius -X` and waits for "Ready to process requests"; false when it
    /// exited first.
    fn spawn_and_wait(&mut self, attempt: u32) -> bool {
        let mut log =
            OpenOptions::new().create(true).append(true).open(self.log_path()).expect("opening the radius log");
        let _ = writeln!(log, "[harness] start attempt {attempt} on port {}", self.port);
        let err = log.try_clone().expect("cloning the log file handle");
        let child = Command::new(FREERADIUS)
            .arg("-X")
            .arg("-d")
            .arg(self.conf_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {FREERADIUS}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if self.log().contains("Ready to process requests") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        panic!("freeradius did not start within {START_TIMEOUT:?}:\n{}", self.log());
    }

    /// The server's debug log (`-X`: every request with its attributes).
    pub fn log(&self) -> String {
        read_or_empty(&self.log_path())
    }

    /// Stops the server (SIGKILL: it keeps no state worth a clean shutdown).
    pub fn stop(&mut self) {
        kill_child(&mut self.child);
    }
}

impl Drop for Radius {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 (UDP)");
    socket.local_addr().expect("local address of a bound socket").port()
}

/// Copies the system config to `conf` and cuts it down: paths into the copy, no user
/// switch (the tests run as root or as the file owner), no reject delay, no proxy listener, no sites but
/// the test one, only [`MODULES`], one client, the test users.
fn copy_config(conf: &Path) {
    let out = Command::new("cp").arg("-a").arg(format!("{SYSTEM_CONFIG}/.")).arg(conf).output().expect("running cp");
    assert!(out.status.success(), "copying {SYSTEM_CONFIG}: {}", String::from_utf8_lossy(&out.stderr));
    for entry in std::fs::read_dir(conf.join("sites-enabled")).expect("listing sites-enabled") {
        std::fs::remove_file(entry.expect("a sites-enabled entry").path()).expect("removing a site");
    }
    for entry in std::fs::read_dir(conf.join("mods-enabled")).expect("listing mods-enabled") {
        let path = entry.expect("a mods-enabled entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !MODULES.contains(&name.as_str()) {
            std::fs::remove_file(&path).expect("removing a module");
        }
    }
    let d = conf.display();
    for sub in ["log", "run"] {
        std::fs::create_dir_all(conf.join(sub)).expect("creating a radius dir");
    }
    let main = std::fs::read_to_string(conf.join("radiusd.conf")).expect("reading radiusd.conf");
    let main: String = main
        .lines()
        .map(|line| {
            let t = line.trim_start();
            if t.starts_with("raddbdir =") {
                format!("raddbdir = {d}")
            } else if t.starts_with("logdir =") {
                format!("logdir = {d}/log")
            } else if t.starts_with("run_dir =") {
                format!("run_dir = {d}/run")
            } else if t.starts_with("user =") || t.starts_with("group =") {
                format!("#{line}")
            } else if t.starts_with("reject_delay") {
                // An Access-Reject comes at once, not after the tests' 1-second timeout.
                "\treject_delay = 0".to_string()
            } else if t.starts_with("proxy_requests") {
                "proxy_requests = no".to_string()
            } else {
                line.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(conf.join("radiusd.conf"), main).expect("writing radiusd.conf");
    std::fs::write(
        conf.join("clients.conf"),
        format!("client gatehouse-tests {{\n\tipaddr = 127.0.0.1\n\tsecret = {}\n\trequire_message_authenticator = yes\n}}\n", Radius::SECRET),
    )
    .expect("writing clients.conf");
    std::fs::write(
        conf.join("mods-config/files/authorize"),
        format!("radalice\tCleartext-Password := \"{}\"\n", Radius::ALICE_PASSWORD),
    )
    .expect("writing the users file");
}
