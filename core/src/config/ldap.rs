//! The `[ldap]` table: an LDAP server or Active Directory as the primary credential of
//! directory users, and the source of their groups.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{is_loopback_host, list_or_commas, text_even_if_numeric};
use crate::{Error, Result};

/// A directory that checks the passwords of its users by binding as them. With a search
/// account (`bind_dn`), the user is found by `login_attribute` under `user_base`; without
/// one, the gateway binds directly with `bind_template` and reads the user's own entry.
///
/// The user filter decides who may log in at all: an entry it excludes (disabled, moved out
/// of scope) is refused like a deleted one.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// `ldap://` or `ldaps://` URLs, tried in order; empty: no directory.
    #[serde(deserialize_with = "list_or_commas")]
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS. Plain LDAP is accepted only to a
    /// loopback address.
    pub starttls: bool,
    /// A PEM file of CA certificates to trust for the directory, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// The search account's DN; empty: direct binds with `bind_template`.
    pub bind_dn: String,
    /// The search account's password (better set through `GATEHOUSE_LDAP__BIND_PASSWORD`).
    #[serde(deserialize_with = "text_even_if_numeric")]
    pub bind_password: String,
    /// Without a search account: the name to bind as, `{name}` standing for the escaped login
    /// name, e.g. `uid={name},ou=people,dc=example,dc=com` or `{name}@corp.example.com`.
    pub bind_template: String,
    /// Where users are searched (and, with `bind_template`, the base for reading the entry).
    pub user_base: String,
    /// Which entries are users who may log in; ANDed with `(login_attribute=NAME)`.
    pub user_filter: String,
    /// The attribute holding the login name: `uid` (OpenLDAP), `sAMAccountName` or
    /// `userPrincipalName` (Active Directory).
    pub login_attribute: String,
    /// The attribute holding the user's mail address (for the email factor); empty: none.
    pub mail_attribute: String,
    /// The attribute holding OpenSSH public keys (`sshPublicKey`); empty: keys only from
    /// the gateway's own store.
    pub ssh_key_attribute: String,
    /// Where groups are searched; empty: `user_base`.
    pub group_base: String,
    /// The groups a user is in; `{dn}` stands for the user's escaped DN. For nested Active
    /// Directory groups: `(member:1.2.840.113556.1.4.1941:={dn})`.
    pub group_filter: String,
    /// Directory group DN → Gatehouse group name. The membership of these groups follows
    /// the directory at every login and every sync.
    pub groups: BTreeMap<String, String>,
    /// Seconds between syncs of all directory users (groups refreshed, users gone from the
    /// directory disabled); 0: only at login. Needs `bind_dn`.
    pub sync_interval_secs: u64,
    /// Seconds to wait for a connection or one operation.
    pub timeout_secs: u64,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            urls: Vec::new(),
            starttls: true,
            ca_file: None,
            bind_dn: String::new(),
            bind_password: String::new(),
            bind_template: String::new(),
            user_base: String::new(),
            user_filter: "(objectClass=person)".into(),
            login_attribute: "uid".into(),
            mail_attribute: "mail".into(),
            ssh_key_attribute: String::new(),
            group_base: String::new(),
            group_filter: "(&(objectClass=groupOfNames)(member={dn}))".into(),
            groups: BTreeMap::new(),
            sync_interval_secs: 900,
            timeout_secs: 5,
        }
    }
}

impl std::fmt::Debug for LdapConfig {
    /// Never shows the search account's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("urls", &self.urls)
            .field("starttls", &self.starttls)
            .field("ca_file", &self.ca_file)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &if self.bind_password.is_empty() { "" } else { "(set)" })
            .field("bind_template", &self.bind_template)
            .field("user_base", &self.user_base)
            .field("user_filter", &self.user_filter)
            .field("login_attribute", &self.login_attribute)
            .field("mail_attribute", &self.mail_attribute)
            .field("ssh_key_attribute", &self.ssh_key_attribute)
            .field("group_base", &self.group_base)
            .field("group_filter", &self.group_filter)
            .field("groups", &self.groups)
            .field("sync_interval_secs", &self.sync_interval_secs)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// How one configured URL is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapServer {
    pub url: String,
    pub host: String,
    /// The URL's port, or the scheme's (389, 636).
    pub port: u16,
    /// `ldaps://`: TLS from the first byte.
    pub ldaps: bool,
    /// `ldap://` upgraded with StartTLS.
    pub starttls: bool,
}

impl LdapServer {
    /// Whether the connection is protected by TLS one way or the other.
    pub fn tls(&self) -> bool {
        self.ldaps || self.starttls
    }
}

impl LdapConfig {
    /// Whether a directory is configured.
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }

    /// Whether users are found by a search account (else by direct binds).
    pub fn searches(&self) -> bool {
        !self.bind_dn.is_empty()
    }

    /// The servers, in the order they are tried.
    pub fn servers(&self) -> Result<Vec<LdapServer>> {
        self.urls.iter().map(|u| self.server(u)).collect()
    }

    fn server(&self, url: &str) -> Result<LdapServer> {
        let bad = |why: &str| Error::Config(format!("ldap.urls: '{}' {why}", crate::audit::printable(url)));
        let (ldaps, rest) = if let Some(rest) = url.strip_prefix("ldaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ldap://") {
            (false, rest)
        } else {
            return Err(bad("is not an ldap:// or ldaps:// URL"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
                (host.to_string(), after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            },
        };
        if host.is_empty() {
            return Err(bad("names no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("has a bad port"))?,
            None if ldaps => 636,
            None => 389,
        };
        let server = LdapServer { url: url.to_string(), host, port, ldaps, starttls: !ldaps && self.starttls };
        if !server.tls() && !is_loopback_host(&server.host) {
            return Err(bad("is plain LDAP: use ldaps:// or starttls = true (plain LDAP only on loopback)"));
        }
        Ok(server)
    }

    pub(super) fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        self.servers()?;
        let need = |value: &str, key: &str| {
            if value.trim().is_empty() {
                Err(Error::Config(format!("ldap.{key}: must be set when ldap.urls is")))
            } else {
                Ok(())
            }
        };
        need(&self.user_base, "user_base")?;
        need(&self.login_attribute, "login_attribute")?;
        match (self.bind_dn.is_empty(), self.bind_template.is_empty()) {
            (true, true) => {
                return Err(Error::Config(
                    "ldap: set bind_dn (a search account) or bind_template (direct binds)".into(),
                ));
            }
            (false, _) if self.bind_password.is_empty() => {
                return Err(Error::Config("ldap.bind_password: must be set with ldap.bind_dn".into()));
            }
            (true, false) if !self.bind_template.contains("{name}") => {
                return Err(Error::Config("ldap.bind_template: must contain {name}".into()));
            }
            _ => {}
        }
        if !self.user_filter.is_empty() && !balanced_filter(&self.user_filter) {
            return Err(Error::Config("ldap.user_filter: not a parenthesised LDAP filter".into()));
        }
        if !self.groups.is_empty() {
            if !self.group_filter.contains("{dn}") || !balanced_filter(&self.group_filter) {
                return Err(Error::Config("ldap.group_filter: a parenthesised filter containing {dn}".into()));
            }
            for name in self.groups.values() {
                crate::users::validate_name("ldap.groups", name).map_err(|e| Error::Config(e.to_string()))?;
            }
        }
        if !self.ssh_key_attribute.is_empty() && !self.searches() {
            return Err(Error::Config(
                "ldap.ssh_key_attribute: keys from the directory need a search account (ldap.bind_dn)".into(),
            ));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 60 {
            return Err(Error::Config("ldap.timeout_secs: must be 1-60".into()));
        }
        if self.sync_interval_secs != 0 && self.sync_interval_secs < 60 {
            return Err(Error::Config("ldap.sync_interval_secs: 0 (off) or at least 60".into()));
        }
        Ok(())
    }
}

/// Whether `filter` is one parenthesised expression with balanced parentheses (escaped
/// parentheses in values are `\28`/`\29` in a filter, so none are skipped here).
fn balanced_filter(filter: &str) -> bool {
    let filter = filter.trim();
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return false;
    }
    let mut depth = 0i32;
    for (i, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 || (depth == 0 && i != filter.len() - 1) {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> LdapConfig {
        LdapConfig {
            urls: vec!["ldap://127.0.0.1:3389".into()],
            bind_dn: "cn=gw,dc=example,dc=com".into(),
            bind_password: "secret".into(),
            user_base: "ou=people,dc=example,dc=com".into(),
            ..LdapConfig::default()
        }
    }

    #[test]
    fn plain_ldap_only_on_loopback() {
        let mut c = base();
        c.starttls = false;
        assert!(c.validate().is_ok());
        c.urls = vec!["ldap://dc1.example.com".into()];
        assert!(c.validate().unwrap_err().to_string().contains("plain LDAP"));
        c.starttls = true;
        assert!(c.validate().is_ok());
        c.starttls = false;
        c.urls = vec!["ldaps://dc1.example.com:636".into()];
        assert!(c.validate().is_ok());
        assert_eq!(c.servers().unwrap()[0].host, "dc1.example.com");
    }

    #[test]
    fn urls_must_be_ldap() {
        let mut c = base();
        c.urls = vec!["http://dc1".into()];
        assert!(c.validate().is_err());
        c.urls = vec!["ldaps://".into()];
        assert!(c.validate().is_err());
        c.urls = vec!["ldaps://[::1]:1636".into()];
        assert_eq!((c.servers().unwrap()[0].host.as_str(), c.servers().unwrap()[0].port), ("::1", 1636));
        c.urls = vec!["ldap://127.0.0.1".into(), "ldaps://dc1".into()];
        assert_eq!(c.servers().unwrap().iter().map(|s| s.port).collect::<Vec<_>>(), vec![389, 636]);
        c.urls = vec!["ldaps://dc1:0".into()];
        assert!(c.validate().is_err());
        c.urls = vec!["ldaps://dc1:http".into()];
        assert!(c.validate().is_err());
    }

    #[test]
    fn search_account_or_template() {
        let mut c = base();
        c.bind_dn.clear();
        assert!(c.validate().is_err());
        c.bind_template = "uid=alice,ou=people".into();
        assert!(c.validate().unwrap_err().to_string().contains("{name}"));
        c.bind_template = "{name}@corp.example.com".into();
        assert!(c.validate().is_ok());
        c.ssh_key_attribute = "sshPublicKey".into();
        assert!(c.validate().is_err());
        let mut c = base();
        c.bind_password.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn filters_must_be_whole() {
        let mut c = base();
        c.user_filter = "objectClass=person".into();
        assert!(c.validate().is_err());
        c.user_filter = "(a=b))(c=d".into();
        assert!(c.validate().is_err());
        c.user_filter = "(&(objectClass=person)(!(pwdAccountLockedTime=*)))".into();
        assert!(c.validate().is_ok());
        c.groups.insert("cn=ops,ou=groups,dc=example,dc=com".into(), "ops".into());
        c.group_filter = "(member=x)".into();
        assert!(c.validate().is_err());
        c.group_filter = "(member:1.2.840.113556.1.4.1941:={dn})".into();
        assert!(c.validate().is_ok());
        c.groups.insert("cn=bad".into(), "no spaces".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_password_is_never_shown() {
        assert!(!format!("{:?}", base()).contains("secret"));
    }
}
