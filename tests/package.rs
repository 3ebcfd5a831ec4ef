//! The Debian package, end to end on this machine (the suite runs as root): `cargo deb`
//! builds it from the binary under test, `dpkg -i` installs it, `systemd-analyze verify`
//! checks the installed unit, the unit's own command line runs the way systemd would run
//! it (the package's system user, no new privileges, the unit's umask, the state
//! directory its own),
//! the real `ssh` logs in through it, and `dpkg --purge` takes everything away again.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Ssh, describe, free_port, run_with_timeout, stdout};

const UNIT: &str = "/usr/lib/systemd/system/gatehouse.service";
const CONFIG: &str = "/etc/gatehouse/gatehouse.toml";
const STATE: &str = "/var/lib/gatehouse";
/// The system user the package makes and the unit runs as.
const USER: &str = "gatehouse";

/// Runs a program without the test runner's `GATEHOUSE_*` variables (the installed
/// gateway would read them as config keys).
fn run(program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("GATEHOUSE_") {
            cmd.env_remove(&key);
        }
    }
    run_with_timeout(cmd.args(args), None, Duration::from_secs(600))
}

fn ok(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    assert!(out.status.success(), "{program} {args:?}: {}", describe(&out));
    out
}

/// Purges the package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "gatehouse"]).stdout(Stdio::null()).status();
    }
}

/// The running gateway, stopped on drop.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ExecStart=` of the installed unit, split into words.
fn exec_start() -> Vec<String> {
    let unit = std::fs::read_to_string(UNIT).expect("the installed unit");
    let line = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart in the unit");
    line.split_whitespace().map(str::to_string).collect()
}

/// Runs `argv` as the unit would: as its user, with no new privileges and no
/// capabilities, the unit's umask, the listen addresses moved to free ports.
fn as_the_unit(argv: &[String], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", USER, "--regid", USER, "--init-groups", "--no-new-privs", "--inh-caps=-all"]);
    // UMask=0077, as in the unit.
    cmd.args(["/bin/sh", "-c", "umask 0077; exec \"$0\" \"$@\""]);
    cmd.args(argv);
    cmd.env_clear().env("PATH", "/usr/bin:/bin").env("NO_COLOR", "1");
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

fn deb_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("the output folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("cargo deb made a .deb")
}

#[test]
fn the_package_installs_runs_as_its_unit_and_purges() {
    let out_dir = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_gatehouse"));
    let profile_dir = bin.parent().expect("the binary's folder");
    let profile = if profile_dir.ends_with("release") { "release" } else { "dev" };
    // The binary under test, stripped as a package ships it (a release package is plain `cargo deb`).
    ok(
        "cargo",
        &[
            "deb",
            "--no-build",
            "--fast",
            "--profile",
            profile,
            "--output",
            out_dir.path().to_str().unwrap(),
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ],
    );
    let deb = deb_file(out_dir.path());
    let listing = stdout(&ok("dpkg-deb", &["--contents", deb.to_str().unwrap()]));
    for path in ["./usr/bin/gatehouse", "./etc/gatehouse/gatehouse.toml", "./usr/lib/systemd/system/gatehouse.service"]
    {
        assert!(listing.contains(path), "{path} not in the package:\n{listing}");
    }

    let _installed = Installed;
    ok("dpkg", &["-i", deb.to_str().unwrap()]);
    ok("systemd-analyze", &["verify", UNIT]);
    let unit = std::fs::read_to_string(UNIT).unwrap();
    for hardening in
        ["User=gatehouse", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"]
    {
        assert!(unit.contains(hardening), "{hardening} missing from the unit");
    }
    ok("/usr/bin/gatehouse", &["check-config", CONFIG]);

    // The state directory systemd would make (StateDirectory=, mode 0700, the unit's user).
    let _ = std::fs::remove_dir_all(STATE);
    std::fs::create_dir_all(STATE).unwrap();
    ok("chown", &[&format!("{USER}:{USER}"), STATE]);
    let uid = stdout(&ok("id", &["-u", USER])).trim().to_string();
    ok("chmod", &["0700", STATE]);
    let (ssh_port, web_port) = (free_port(), free_port());
    let env = vec![
        ("GATEHOUSE_SSH_LISTEN".to_string(), format!("127.0.0.1:{ssh_port}")),
        ("GATEHOUSE_WEB_LISTEN".to_string(), format!("127.0.0.1:{web_port}")),
    ];
    let log_path = out_dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = as_the_unit(&exec_start(), &env)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("starting the unit's command line");
    let _service = Service(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(common::gateway::port_open(ssh_port) && common::gateway::port_open(web_port)) {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(Instant::now() < deadline, "the service did not start:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // An administrator adds a user with the installed CLI, as the unit's user, and she logs in.
    let mut add = as_the_unit(
        &["/usr/bin/gatehouse", "--config", CONFIG, "user", "add", "alice", "--password-stdin"].map(String::from),
        &env,
    );
    let out = run_with_timeout(&mut add, Some("a long passphrase\n"), Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
    let login = Ssh::new(ssh_port, "alice").arg("-v").stdin("").preferred("password").password("a long passphrase");
    let out = login.run(&[]);
    assert!(
        common::ssh::authenticated(&out),
        "{}\n{}",
        describe(&out),
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    // Everything it wrote is in the state directory, the unit's user's alone.
    for file in ["gatehouse.db", "secret.key", "web-tls-cert.pem", "web-tls-key.pem"] {
        let meta = std::fs::metadata(Path::new(STATE).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta).to_string(), uid, "{file}");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077, 0, "{file} is private");
    }
    drop(_service);

    // Purge takes the program, the unit, the configuration and the state away.
    ok("dpkg", &["--purge", "gatehouse"]);
    for gone in ["/usr/bin/gatehouse", UNIT, CONFIG, STATE] {
        assert!(!Path::new(gone).exists(), "{gone} is still there after the purge");
    }
    assert!(!run("id", &["-u", USER]).status.success(), "the user {USER} is still there after the purge");
}
