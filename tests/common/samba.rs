//! [`SambaDc`]: a throwaway real Active Directory domain controller (Samba), for what only
//! AD does: `LDAP_MATCHING_RULE_IN_CHAIN` (nested groups resolved by the server), AD's bind
//! errors, and accounts made and disabled the AD way (`samba-tool`).
//!
//! Each instance provisions its own domain (`samba-tool domain provision`, realm
//! `GATEHOUSE.TEST`, about 10 s) in a temp dir and runs `samba -i -M single` with only the
//! `ldap` service. Samba listens on fixed ports (389, 636, 3268, 3269) of the addresses of
//! its interfaces, so each instance takes an address of its own in 127.0.0.0/8 and adds it
//! to `lo` (`ip addr add A/32 dev lo`, which needs root; the add also serves as the lock
//! between parallel tests) and deletes it on drop. TLS: a certificate for that address from
//! a throwaway CA ([`SambaDc::ca_cert_path`]). Password complexity is off so tests can use
//! short passwords; Samba still refuses a simple bind without TLS, as AD does.
//!
//! The domain holds, besides Samba's own accounts, the service account
//! [`SambaDc::SERVICE_DN`] (a plain domain user: in AD every user may read users and
//! groups). Users and groups live in `CN=Users`, named `CN=NAME`, with
//! `userPrincipalName` `NAME@gatehouse.test`.

use std::fs::OpenOptions;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::certs::{ServerCert, make_certificates};
use super::process::{describe, kill_child, random_suffix, run_with_timeout, terminate};
use super::servers::read_or_empty;

const SAMBA: &str = "/usr/sbin/samba";
const SAMBA_TOOL: &str = "/usr/bin/samba-tool";
const PROVISION_TIMEOUT: Duration = Duration::from_secs(120);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const ADDRESS_ATTEMPTS: u32 = 20;

/// A running Samba AD DC; dropping it kills the server, gives its address back and deletes
/// its dir.
pub struct SambaDc {
    /// The loopback address it alone listens on (ports 389 and 636).
    pub address: String,
    pub dir: TempDir,
    child: Option<Child>,
    address_added: bool,
}

impl SambaDc {
    pub const REALM: &'static str = "GATEHOUSE.TEST";
    pub const DOMAIN: &'static str = "GATEHOUSE";
    pub const BASE_DN: &'static str = "DC=gatehouse,DC=test";
    pub const ADMIN_PASSWORD: &'static str = "Adm1n-directory-Passw0rd";
    pub const SERVICE_DN: &'static str = "CN=gatehouse,CN=Users,DC=gatehouse,DC=test";
    pub const SERVICE_PASSWORD: &'static str = "samba service password";

    /// Takes an address, provisions the domain, starts Samba and adds the service account.
    pub fn start() -> SambaDc {
        for program in [SAMBA, SAMBA_TOOL] {
            assert!(Path::new(program).exists(), "{program} is missing: apt-get install samba");
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-samba-").tempdir().expect("creating a temp dir");
        let mut dc = SambaDc { address: String::new(), dir, child: None, address_added: false };
        dc.take_address();
        std::fs::create_dir_all(dc.tls_dir()).expect("creating the TLS dir");
        make_certificates(&dc.tls_dir(), &dc.address, ServerCert::Trusted);
        dc.provision();
        dc.samba_tool(&[
            "domain",
            "passwordsettings",
            "set",
            "--complexity=off",
            "--min-pwd-length=1",
            "--history-length=0",
            "--min-pwd-age=0",
            "--max-pwd-age=0",
        ]);
        dc.spawn_and_wait();
        dc.add_user("gatehouse", SambaDc::SERVICE_PASSWORD, None);
        dc
    }

    /// `ldap://ADDRESS` (port 389): a simple bind needs StartTLS first.
    pub fn url(&self) -> String {
        format!("ldap://{}", self.address)
    }

    /// `ldaps://ADDRESS` (port 636).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://{}", self.address)
    }

    /// The PEM of the CA that signed the server certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.tls_dir().join("ca.pem")
    }

    pub fn base_dn(&self) -> &'static str {
        SambaDc::BASE_DN
    }

    /// `CN=Users,…`, where users and groups are made.
    pub fn users_dn(&self) -> String {
        format!("CN=Users,{}", SambaDc::BASE_DN)
    }

    pub fn service_dn(&self) -> &'static str {
        SambaDc::SERVICE_DN
    }

    pub fn service_password(&self) -> &'static str {
        SambaDc::SERVICE_PASSWORD
    }

    /// The DN of user or group `name` (no name here needs RFC 4514 escaping: tests use
    /// plain names).
    pub fn dn(&self, name: &str) -> String {
        format!("CN={name},{}", self.users_dn())
    }

    /// The user's `userPrincipalName`.
    pub fn upn(&self, sam: &str) -> String {
        format!("{sam}@{}", SambaDc::REALM.to_lowercase())
    }

    /// `samba-tool user create`: an enabled user (userAccountControl 512).
    pub fn add_user(&self, sam: &str, password: &str, mail: Option<&str>) {
        let mail_arg = mail.map(|m| format!("--mail-address={m}"));
        let mut args = vec!["user", "create", sam, password];
        if let Some(arg) = mail_arg.as_deref() {
            args.push(arg);
        }
        self.samba_tool(&args);
    }

    /// `samba-tool group add`, then the members (users or groups) if any.
    pub fn add_group(&self, name: &str, members: &[&str]) {
        self.samba_tool(&["group", "add", name]);
        if !members.is_empty() {
            self.samba_tool(&["group", "addmembers", name, &members.join(",")]);
        }
    }

    /// Makes user or group `member` a member of group `group` (a group in a group: nesting).
    pub fn add_member(&self, group: &str, member: &str) {
        self.samba_tool(&["group", "addmembers", group, member]);
    }

    pub fn remove_member(&self, group: &str, member: &str) {
        self.samba_tool(&["group", "removemembers", group, member]);
    }

    /// `samba-tool user disable`: sets ACCOUNTDISABLE (bit 2 of userAccountControl); binds
    /// then fail with AD's "data 533".
    pub fn disable_user(&self, sam: &str) {
        self.samba_tool(&["user", "disable", sam]);
    }

    pub fn enable_user(&self, sam: &str) {
        self.samba_tool(&["user", "enable", sam]);
    }

    pub fn delete_user(&self, sam: &str) {
        self.samba_tool(&["user", "delete", sam]);
    }

    pub fn set_password(&self, sam: &str, password: &str) {
        self.samba_tool(&["user", "setpassword", sam, &format!("--newpassword={password}")]);
    }

    /// Runs `samba-tool ARGS -s smb.conf` (on the domain's database directly) and panics
    /// with its output when it fails.
    pub fn samba_tool(&self, args: &[&str]) -> String {
        let out =
            run_with_timeout(Command::new(SAMBA_TOOL).args(args).arg("-s").arg(self.smb_conf()), None, TOOL_TIMEOUT);
        assert!(out.status.success(), "samba-tool {} failed:\n{}", args.join(" "), describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An ldap-utils program that trusts this server's CA only and checks the certificate,
    /// as [`super::ldap::Slapd::tool`].
    pub fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("LDAPTLS_CACERT", self.ca_cert_path())
            .env("LDAPTLS_REQCERT", "demand")
            .env("LDAPRC", self.dir.path().join("no-ldaprc"))
            .args(["-o", "nettimeout=5"]);
        cmd
    }

    /// Samba's own output (`-i`: its log on stdout).
    pub fn log(&self) -> String {
        read_or_empty(&self.log_path())
    }

    /// Stops the server (SIGTERM, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        terminate(child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_child(&mut self.child);
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    fn domain_dir(&self) -> PathBuf {
        self.dir.path().join("dc")
    }

    fn smb_conf(&self) -> PathBuf {
        self.domain_dir().join("etc/smb.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("samba.log")
    }

    /// Adds a random 127.x.y.z/32 to `lo`; an address another instance holds makes `ip`
    /// fail with "File exists", and another is tried.
    fn take_address(&mut self) {
        for _ in 0..ADDRESS_ATTEMPTS {
            let r = u32::from_str_radix(&random_suffix()[..8], 16).expect("random_suffix is hex");
            let address = format!("127.{}.{}.{}", 100 + r % 100, (r >> 8) % 256, 1 + (r >> 16) % 254);
            let out = run_with_timeout(
                Command::new("ip").args(["addr", "add", &format!("{address}/32"), "dev", "lo"]),
                None,
                TOOL_TIMEOUT,
            );
            if out.status.success() {
                self.address = address;
                self.address_added = true;
                return;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("File exists"),
                "cannot add {address} to lo (Samba needs root for that):\n{}",
                describe(&out)
            );
        }
        panic!("no free loopback address for Samba after {ADDRESS_ATTEMPTS} tries");
    }

    /// `samba-tool domain provision` into `dc/`, with every path Samba writes inside it
    /// and only the LDAP service.
    fn provision(&self) {
        let dc = self.domain_dir();
        let d = dc.display();
        let tls = self.tls_dir();
        let t = tls.display();
        let options = [
            format!("interfaces = {}", self.address),
            "bind interfaces only = yes".to_string(),
            "server services = ldap".to_string(),
            format!("pid directory = {d}/run"),
            format!("ncalrpc dir = {d}/ncalrpc"),
            format!("log file = {d}/log.samba"),
            "tls enabled = yes".to_string(),
            format!("tls keyfile = {t}/server.key"),
            format!("tls certfile = {t}/server.pem"),
            format!("tls cafile = {t}/ca.pem"),
        ];
        let mut cmd = Command::new(SAMBA_TOOL);
        cmd.args(["domain", "provision", "--server-role=dc", "--use-rfc2307", "--dns-backend=NONE"])
            .arg(format!("--targetdir={d}"))
            .arg(format!("--realm={}", SambaDc::REALM))
            .arg(format!("--domain={}", SambaDc::DOMAIN))
            .arg(format!("--adminpass={}", SambaDc::ADMIN_PASSWORD));
        for option in &options {
            cmd.arg(format!("--option={option}"));
        }
        let out = run_with_timeout(&mut cmd, None, PROVISION_TIMEOUT);
        assert!(out.status.success(), "samba-tool domain provision failed:\n{}", describe(&out));
    }

    /// Spawns `samba -i -M single` and waits until ports 389 and 636 of its address take
    /// connections.
    fn spawn_and_wait(&mut self) {
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("opening the samba log");
        let err = log.try_clone().expect("cloning the log file handle");
        let child = Command::new(SAMBA)
            .args(["-i", "-M", "single", "-s"])
            .arg(self.smb_conf())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SAMBA}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!("samba exited ({status}):\n{}", self.log());
            }
            let address = self.address.as_str();
            if TcpStream::connect((address, 389)).is_ok() && TcpStream::connect((address, 636)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
        panic!("samba did not listen on {} within {START_TIMEOUT:?}:\n{}", self.address, self.log());
    }
}

impl Drop for SambaDc {
    fn drop(&mut self) {
        self.stop();
        if self.address_added {
            let _ = Command::new("ip")
                .args(["addr", "del", &format!("{}/32", self.address), "dev", "lo"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
