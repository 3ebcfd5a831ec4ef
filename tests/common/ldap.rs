//! [`Slapd`]: a throwaway real OpenLDAP server on 127.0.0.1, the directory behind the
//! `[ldap]` primary credential. Everything lives in its own temp dir: a throwaway CA and
//! server certificate (`openssl`), a `cn=config` built with `slapadd -n0` from LDIF written
//! here, an mdb database, the log. `slapd -d stats` runs in the foreground as the user
//! running the tests and is killed on drop.
//!
//! What the directory holds from the start (suffix [`Slapd::BASE_DN`]):
//! - `ou=people`, `ou=groups`, `ou=services`, and `ou=policies` with the default password
//!   policy (lockout on, no failure count: only an explicit lock locks);
//! - the service account [`Slapd::SERVICE_DN`] / [`Slapd::SERVICE_PASSWORD`], which reads
//!   every entry (never a password hash): what the gateway searches with.
//!
//! Access: a user binds and reads their own entry; the service account reads everything but
//! `userPassword`; anonymous may only bind. The harness writes as the root DN
//! ([`Slapd::ROOT_DN`]), which no ACL limits.
//!
//! Overlays: `memberof` (users and nested groups carry `memberOf`; slapd has no
//! LDAP_MATCHING_RULE_IN_CHAIN, so `memberOf` lists direct groups only), `refint` (a deleted
//! user leaves its groups), `ppolicy` (a `pwdAccountLockedTime` of `000001010000Z` refuses
//! every bind: [`Slapd::disable_user`]). Schemas: core, cosine, inetorgperson, nis,
//! ppolicy's built-in one, and `ldap_schema.ldif` beside this file (openssh-lpk's
//! `sshPublicKey`, and AD's `sAMAccountName`, `userPrincipalName`, `userAccountControl`).
//!
//! Groups are `groupOfNames`. That class needs one `member`, so a group with no members
//! holds [`Slapd::NOBODY_DN`], an entry that does not exist; a member list read back never
//! shows it.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

use super::certs::{ServerCert, make_certificates};
use super::process::{describe, kill_child, run_with_timeout, stderr, stdout, terminate};
use super::servers::{free_port, read_or_empty};

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const SYSTEM_SCHEMAS: &str = "/etc/ldap/schema";
const MODULES: &str = "/usr/lib/ldap";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: u32 = 4;
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);
/// The test schema: openssh-lpk and the AD account attributes.
const TEST_SCHEMA: &str = include_str!("ldap_schema.ldif");

/// How [`Slapd::start_with`] sets the server up.
#[derive(Clone, Debug, Default)]
pub struct SlapdOptions {
    /// Serve a certificate for 127.0.0.1 signed by another CA than [`Slapd::ca_cert_path`]:
    /// a client that trusts only that CA must refuse it.
    pub untrusted_cert: bool,
    /// Serve a certificate signed by the trusted CA but for another name
    /// (`wrong.invalid`, no IP address): a client checking the name must refuse it.
    pub wrong_name: bool,
}

/// A running slapd; dropping it kills the server and deletes its dir.
pub struct Slapd {
    /// The plain port (`ldap://`, StartTLS).
    pub port: u16,
    /// The TLS port (`ldaps://`).
    pub tls_port: u16,
    pub dir: TempDir,
    child: Option<Child>,
    /// Names added by [`Slapd::add_ad_user`]: their entries are `cn=NAME`, not `uid=NAME`.
    ad_users: Mutex<HashSet<String>>,
}

impl Slapd {
    pub const BASE_DN: &'static str = "dc=gatehouse,dc=test";
    pub const ROOT_DN: &'static str = "cn=admin,dc=gatehouse,dc=test";
    pub const ROOT_PASSWORD: &'static str = "directory-root-secret";
    pub const SERVICE_DN: &'static str = "cn=gatehouse,ou=services,dc=gatehouse,dc=test";
    pub const SERVICE_PASSWORD: &'static str = "directory-service-secret";
    /// The placeholder member of an empty group (no such entry exists).
    pub const NOBODY_DN: &'static str = "cn=nobody,dc=gatehouse,dc=test";
    /// The value of `pwdAccountLockedTime` that ppolicy reads as "locked for good".
    pub const LOCKED_FOR_GOOD: &'static str = "000001010000Z";
    /// userAccountControl of an enabled AD user (NORMAL_ACCOUNT).
    pub const UAC_NORMAL: u32 = 512;
    /// The ACCOUNTDISABLE bit of userAccountControl.
    pub const UAC_DISABLED: u32 = 2;

    /// A server with a certificate the client can trust ([`Slapd::ca_cert_path`]).
    pub fn start() -> Slapd {
        Slapd::start_with(SlapdOptions::default())
    }

    /// Makes the certificates, builds `cn=config`, starts the server (with new ports when
    /// one picked was taken meanwhile) and loads the fixed layout.
    pub fn start_with(options: SlapdOptions) -> Slapd {
        for program in [SLAPD, SLAPADD] {
            assert!(Path::new(program).exists(), "{program} is missing: apt-get install slapd ldap-utils");
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-slapd-").tempdir().expect("creating a temp dir");
        let signer = match (options.untrusted_cert, options.wrong_name) {
            (true, _) => ServerCert::OtherCa,
            (false, true) => ServerCert::WrongName,
            (false, false) => ServerCert::Trusted,
        };
        make_certificates(dir.path(), "127.0.0.1", signer);
        let mut slapd = Slapd { port: 0, tls_port: 0, dir, child: None, ad_users: Mutex::new(HashSet::new()) };
        slapd.build_config();
        for attempt in 1..=START_ATTEMPTS {
            slapd.port = free_port();
            slapd.tls_port = free_port();
            if slapd.port == slapd.tls_port {
                continue;
            }
            if slapd.spawn_and_wait(attempt) {
                slapd.load_layout();
                return slapd;
            }
            let log = slapd.log();
            if !log.contains("Address already in use") || attempt == START_ATTEMPTS {
                panic!("slapd did not start:\n{log}");
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// `ldap://127.0.0.1:PORT`: plain LDAP, on which a client must use StartTLS.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT`: LDAP over TLS from the first byte.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// The PEM of the throwaway CA that signed the server certificate (unless
    /// [`SlapdOptions::untrusted_cert`]): what a client trusts.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The PEM of a CA that signed nothing this server serves (or, with
    /// [`SlapdOptions::untrusted_cert`], the one that did): a trust store that must fail.
    pub fn other_ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    pub fn base_dn(&self) -> &'static str {
        Slapd::BASE_DN
    }

    pub fn people_dn(&self) -> String {
        format!("ou=people,{}", Slapd::BASE_DN)
    }

    pub fn groups_dn(&self) -> String {
        format!("ou=groups,{}", Slapd::BASE_DN)
    }

    pub fn service_dn(&self) -> &'static str {
        Slapd::SERVICE_DN
    }

    pub fn service_password(&self) -> &'static str {
        Slapd::SERVICE_PASSWORD
    }

    /// The DN of user `name`: `uid=NAME,ou=people,…`, or `cn=NAME,ou=people,…` for an
    /// AD-shaped user, the value escaped as RFC 4514 asks.
    pub fn user_dn(&self, name: &str) -> String {
        let rdn = if self.is_ad_user(name) { "cn" } else { "uid" };
        format!("{rdn}={},{}", escape_dn_value(name), self.people_dn())
    }

    /// The DN of group `cn`.
    pub fn group_dn(&self, cn: &str) -> String {
        format!("cn={},{}", escape_dn_value(cn), self.groups_dn())
    }

    /// Adds an OpenLDAP-style user (`inetOrgPerson` + `ldapPublicKey`): `uid`, `cn` and
    /// `sn` are `uid`, with a password, an optional mail and any number of SSH keys.
    pub fn add_user(&self, uid: &str, password: &str, mail: Option<&str>, ssh_keys: &[&str]) {
        assert!(!password.is_empty(), "a directory user needs a password");
        let mut ldif = format!("{}changetype: add\n", ldif_line("dn", &self.user_dn(uid)));
        ldif += "objectClass: inetOrgPerson\nobjectClass: ldapPublicKey\n";
        for attr in ["uid", "cn", "sn"] {
            ldif += &ldif_line(attr, uid);
        }
        ldif += &ldif_line("userPassword", password);
        if let Some(mail) = mail {
            ldif += &ldif_line("mail", mail);
        }
        for key in ssh_keys {
            ldif += &ldif_line("sshPublicKey", key.trim());
        }
        self.modify(&ldif);
    }

    /// Adds an AD-shaped user `cn=SAM,ou=people,…` (classes `inetOrgPerson`,
    /// `gatehouseAdAccount` and `ldapPublicKey`): `sAMAccountName`, `userPrincipalName`,
    /// and `userAccountControl` 512, or 514 with the ppolicy lock when `disabled` (a
    /// disabled AD account cannot bind either).
    pub fn add_ad_user(&self, sam: &str, upn: &str, password: &str, mail: Option<&str>, disabled: bool) {
        assert!(!password.is_empty(), "a directory user needs a password");
        self.ad_users.lock().expect("the AD user set is never poisoned").insert(sam.to_string());
        let mut ldif = format!("{}changetype: add\n", ldif_line("dn", &self.user_dn(sam)));
        ldif += "objectClass: inetOrgPerson\nobjectClass: gatehouseAdAccount\nobjectClass: ldapPublicKey\n";
        for attr in ["cn", "sn", "sAMAccountName"] {
            ldif += &ldif_line(attr, sam);
        }
        ldif += &ldif_line("userPrincipalName", upn);
        ldif += &ldif_line("userPassword", password);
        if let Some(mail) = mail {
            ldif += &ldif_line("mail", mail);
        }
        let uac = if disabled { Slapd::UAC_NORMAL | Slapd::UAC_DISABLED } else { Slapd::UAC_NORMAL };
        ldif += &format!("userAccountControl: {uac}\n");
        if disabled {
            ldif += &format!("pwdAccountLockedTime: {}\n", Slapd::LOCKED_FOR_GOOD);
        }
        self.modify(&ldif);
    }

    /// Adds group `cn` with these users as members.
    pub fn add_group(&self, cn: &str, member_uids: &[&str]) {
        let members: Vec<String> = member_uids.iter().map(|uid| self.user_dn(uid)).collect();
        let mut ldif = format!("{}changetype: add\nobjectClass: groupOfNames\n", ldif_line("dn", &self.group_dn(cn)));
        ldif += &ldif_line("cn", cn);
        ldif += &member_lines(&members);
        self.modify(&ldif);
    }

    /// Makes group `child` a member of group `parent` (nesting).
    pub fn add_group_to_group(&self, parent: &str, child: &str) {
        self.add_member_dn(parent, &self.group_dn(child));
    }

    /// Makes user `uid` a member of group `group`.
    pub fn add_member(&self, group: &str, uid: &str) {
        self.add_member_dn(group, &self.user_dn(uid));
    }

    /// Removes user `uid` from group `group`.
    pub fn remove_member(&self, group: &str, uid: &str) {
        let gone = self.user_dn(uid).to_lowercase();
        let members: Vec<String> =
            self.group_members(group).into_iter().filter(|dn| dn.to_lowercase() != gone).collect();
        self.set_members(group, &members);
    }

    /// The DNs in group `cn`'s `member`, as stored (the placeholder left out).
    pub fn group_members(&self, cn: &str) -> Vec<String> {
        ldif_values(&self.search_as_root(&self.group_dn(cn), "(objectClass=groupOfNames)", &["member"]), "member")
            .into_iter()
            .filter(|dn| !dn.eq_ignore_ascii_case(Slapd::NOBODY_DN))
            .collect()
    }

    /// Replaces the user's `sshPublicKey` values (none: no key left).
    pub fn set_ssh_keys(&self, uid: &str, keys: &[&str]) {
        let mut ldif = format!("{}changetype: modify\nreplace: sshPublicKey\n", ldif_line("dn", &self.user_dn(uid)));
        for key in keys {
            ldif += &ldif_line("sshPublicKey", key.trim());
        }
        self.modify(&ldif);
    }

    /// Locks the user with ppolicy (every bind then fails with invalid credentials), and
    /// for an AD-shaped user also sets the ACCOUNTDISABLE bit (userAccountControl 514).
    pub fn disable_user(&self, uid: &str) {
        let mut ldif = format!(
            "{}changetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: {}\n",
            ldif_line("dn", &self.user_dn(uid)),
            Slapd::LOCKED_FOR_GOOD
        );
        if self.is_ad_user(uid) {
            ldif += &format!(
                "-\nreplace: userAccountControl\nuserAccountControl: {}\n",
                Slapd::UAC_NORMAL | Slapd::UAC_DISABLED
            );
        }
        self.modify(&ldif);
    }

    /// Undoes [`Slapd::disable_user`].
    pub fn enable_user(&self, uid: &str) {
        let mut ldif =
            format!("{}changetype: modify\nreplace: pwdAccountLockedTime\n", ldif_line("dn", &self.user_dn(uid)));
        if self.is_ad_user(uid) {
            ldif += &format!("-\nreplace: userAccountControl\nuserAccountControl: {}\n", Slapd::UAC_NORMAL);
        }
        self.modify(&ldif);
    }

    /// Deletes the user's entry; refint takes it out of every group.
    pub fn delete_user(&self, uid: &str) {
        self.modify(&format!("{}changetype: delete\n", ldif_line("dn", &self.user_dn(uid))));
        self.ad_users.lock().expect("the AD user set is never poisoned").remove(uid);
    }

    /// Sets a new password (ppolicy stores it hashed).
    pub fn set_password(&self, uid: &str, password: &str) {
        assert!(!password.is_empty(), "a directory user needs a password");
        let mut ldif = format!("{}changetype: modify\nreplace: userPassword\n", ldif_line("dn", &self.user_dn(uid)));
        ldif += &ldif_line("userPassword", password);
        self.modify(&ldif);
    }

    /// Applies LDIF change records (each with its `changetype`) as the root DN with
    /// `ldapmodify`; panics with the tool's output when one fails.
    pub fn modify(&self, ldif: &str) {
        let out = run_with_timeout(
            self.tool("ldapmodify").args(["-x", "-H", &self.url(), "-D", Slapd::ROOT_DN, "-w", Slapd::ROOT_PASSWORD]),
            Some(ldif),
            TOOL_TIMEOUT,
        );
        assert!(out.status.success(), "ldapmodify failed:\n{}\n--- LDIF ---\n{ldif}", describe(&out));
    }

    /// An ldap-utils program (`ldapsearch`, `ldapwhoami`, …) that trusts this server's CA
    /// only (`LDAPTLS_CACERT`), checks the certificate (`LDAPTLS_REQCERT=demand`) and
    /// gives up on a silent network after 5 s. Arguments are the caller's.
    pub fn tool(&self, program: &str) -> Command {
        self.tool_trusting(program, &self.ca_cert_path())
    }

    /// Like [`Slapd::tool`], trusting the CA in `ca_pem` instead.
    pub fn tool_trusting(&self, program: &str, ca_pem: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("LDAPTLS_CACERT", ca_pem)
            .env("LDAPTLS_REQCERT", "demand")
            // No ~/.ldaprc or ./ldaprc of the machine's.
            .env("LDAPRC", self.dir.path().join("no-ldaprc"))
            .args(["-o", "nettimeout=5"]);
        cmd
    }

    /// Stops the server (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]); the data stays.
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

    /// Starts the server again on the same ports with the same data (after
    /// [`Slapd::stop`], for outage tests); stops it first if it runs.
    pub fn restart(&mut self) {
        self.stop();
        if !self.spawn_and_wait(0) {
            panic!("slapd did not start again on ports {} and {}:\n{}", self.port, self.tls_port, self.log());
        }
    }

    /// Whether the server process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's log (`-d stats`: connections, binds with their DNs, searches with
    /// their filters, results).
    pub fn log(&self) -> String {
        read_or_empty(&self.log_path())
    }

    fn is_ad_user(&self, name: &str) -> bool {
        self.ad_users.lock().expect("the AD user set is never poisoned").contains(name)
    }

    fn add_member_dn(&self, group: &str, dn: &str) {
        let mut members = self.group_members(group);
        if !members.iter().any(|m| m.eq_ignore_ascii_case(dn)) {
            members.push(dn.to_string());
        }
        self.set_members(group, &members);
    }

    /// Replaces the group's member list (empty: the placeholder), so memberof sees one
    /// change and groupOfNames never goes without a member.
    fn set_members(&self, group: &str, members: &[String]) {
        let mut ldif = format!("{}changetype: modify\nreplace: member\n", ldif_line("dn", &self.group_dn(group)));
        ldif += &member_lines(members);
        self.modify(&ldif);
    }

    /// Searches the subtree at `base` as the root DN (no ACL applies) and returns the
    /// entries as unwrapped LDIF; panics with the tool's output when the search fails.
    pub fn search_as_root(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        let mut cmd = self.tool("ldapsearch");
        cmd.args([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-x",
            "-H",
            &self.url(),
            "-D",
            Slapd::ROOT_DN,
            "-w",
            Slapd::ROOT_PASSWORD,
        ])
        .args(["-b", base, filter])
        .args(attrs);
        let out = run_with_timeout(&mut cmd, None, TOOL_TIMEOUT);
        assert!(out.status.success(), "ldapsearch as root (base {base}, filter {filter}) failed:\n{}", describe(&out));
        stdout(&out)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("slapd.log")
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("slapd.d")
    }

    /// Writes `config.ldif` (global TLS settings, modules, schemas, the mdb database with
    /// its ACLs and overlays) and turns it into `slapd.d` with `slapadd -n0`.
    fn build_config(&self) {
        let d = self.dir.path();
        std::fs::write(d.join("gatehouse-test.ldif"), TEST_SCHEMA).expect("writing the test schema");
        std::fs::create_dir_all(d.join("data")).expect("creating the mdb dir");
        std::fs::create_dir_all(self.config_dir()).expect("creating slapd.d");
        let d = d.display();
        let schemas: String = ["core", "cosine", "inetorgperson", "nis"]
            .iter()
            .map(|name| format!("include: file://{SYSTEM_SCHEMAS}/{name}.ldif\n\n"))
            .chain(std::iter::once(format!("include: file://{d}/gatehouse-test.ldif\n\n")))
            .collect();
        let base = Slapd::BASE_DN;
        let root = Slapd::ROOT_DN;
        let root_pw = Slapd::ROOT_PASSWORD;
        let service = Slapd::SERVICE_DN;
        let nobody = Slapd::NOBODY_DN;
        let config = format!(
            r#"dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcArgsFile: {d}/slapd.args
olcTLSCACertificateFile: {d}/ca.pem
olcTLSCertificateFile: {d}/server.pem
olcTLSCertificateKeyFile: {d}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULES}
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {base}
olcRootDN: {root}
olcRootPW: {root_pw}
olcDbDirectory: {d}/data
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail,sAMAccountName,userPrincipalName eq
olcDbIndex: member,memberOf eq
olcAccess: {{0}}to attrs=userPassword by self =xw by anonymous auth by * none
olcAccess: {{1}}to * by self read by dn.exact="{service}" read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
olcMemberOfDangling: ignore

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member
olcRefintNothing: {nobody}

dn: olcOverlay={{2}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{2}}ppolicy
olcPPolicyDefault: cn=default,ou=policies,{base}
olcPPolicyHashCleartext: TRUE
"#
        );
        let path = self.dir.path().join("config.ldif");
        std::fs::write(&path, config).expect("writing config.ldif");
        let out = run_with_timeout(
            Command::new(SLAPADD).arg("-n0").arg("-F").arg(self.config_dir()).arg("-l").arg(&path),
            None,
            TOOL_TIMEOUT,
        );
        assert!(out.status.success(), "slapadd -n0 (cn=config) failed:\n{}", describe(&out));
    }

    /// The fixed layout: the suffix, the three branches, the password policy, the service
    /// account.
    fn load_layout(&self) {
        let base = Slapd::BASE_DN;
        let mut ldif = format!(
            "dn: {base}\nchangetype: add\nobjectClass: dcObject\nobjectClass: organization\ndc: gatehouse\n\
             o: Gatehouse test directory\n\n"
        );
        for ou in ["people", "groups", "services", "policies"] {
            ldif += &format!("dn: ou={ou},{base}\nchangetype: add\nobjectClass: organizationalUnit\nou: {ou}\n\n");
        }
        // pwdLockout makes ppolicy honour pwdAccountLockedTime; pwdMaxFailure 0 means
        // wrong passwords never lock anyone by themselves.
        ldif += &format!(
            "dn: cn=default,ou=policies,{base}\nchangetype: add\nobjectClass: applicationProcess\n\
             objectClass: pwdPolicy\ncn: default\npwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 0\n\n"
        );
        ldif += &format!(
            "dn: {}\nchangetype: add\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
             cn: gatehouse\nuserPassword: {}\n",
            Slapd::SERVICE_DN,
            Slapd::SERVICE_PASSWORD
        );
        self.modify(&ldif);
    }

    /// Spawns `slapd -d stats` and waits until it says it started and its plain port takes
    /// a connection; false when it exited first (a port taken, usually).
    fn spawn_and_wait(&mut self, attempt: u32) -> bool {
        let mut log =
            OpenOptions::new().create(true).append(true).open(self.log_path()).expect("opening the slapd log");
        let _ = writeln!(log, "[harness] start attempt {attempt} on ports {} and {}", self.port, self.tls_port);
        let err = log.try_clone().expect("cloning the log file handle");
        let listeners = format!("{} {}", self.url(), self.ldaps_url());
        let child = Command::new(SLAPD)
            .args(["-d", "stats", "-F"])
            .arg(self.config_dir())
            .arg("-h")
            .arg(listeners)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SLAPD}: {e}"));
        self.child = Some(child);
        let before = self.log().matches("slapd starting").count();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if self.log().matches("slapd starting").count() > before
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        panic!("slapd did not start within {START_TIMEOUT:?}:\n{}", self.log());
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// `value` escaped for use as an attribute value in a DN (RFC 4514): `,+"\<>;=` and NUL
/// always, `#` and space at the start, space at the end. Filter characters such as `*` and
/// `(` need no escaping in a DN; in a search filter they do ([`escape_filter_value`]).
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

/// `value` escaped for use inside a search filter (RFC 4515): `*`, `(`, `)`, `\` and NUL
/// as `\2a`, `\28`, `\29`, `\5c`, `\00`.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// One LDIF line `attr: value`, or `attr:: BASE64` when the value is not an LDIF
/// SAFE-STRING (RFC 2849: non-ASCII, control characters, or a leading space, `:` or `<`;
/// a trailing space too, which some parsers drop).
pub fn ldif_line(attr: &str, value: &str) -> String {
    let safe = !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ')
        && value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if safe {
        format!("{attr}: {value}\n")
    } else {
        format!("{attr}:: {}\n", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

/// The values of `attr` in unwrapped LDIF (`ldapsearch -o ldif-wrap=no`), base64 decoded.
pub fn ldif_values(ldif: &str, attr: &str) -> Vec<String> {
    let plain = format!("{}: ", attr.to_lowercase());
    let encoded = format!("{}:: ", attr.to_lowercase());
    ldif.lines()
        .filter_map(|line| {
            let lower = line.to_lowercase();
            if lower.starts_with(&plain) {
                Some(line[plain.len()..].to_string())
            } else if lower.starts_with(&encoded) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(line[encoded.len()..].trim())
                    .expect("ldapsearch writes valid base64");
                Some(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                None
            }
        })
        .collect()
}

fn member_lines(members: &[String]) -> String {
    if members.is_empty() {
        return format!("member: {}\n", Slapd::NOBODY_DN);
    }
    members.iter().map(|dn| ldif_line("member", dn)).collect()
}

/// Whether `out` (of `ldapwhoami`/`ldapsearch`) failed with "Invalid credentials (49)".
pub fn invalid_credentials(out: &Output) -> bool {
    !out.status.success() && stderr(out).contains("Invalid credentials (49)")
}
