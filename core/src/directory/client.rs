//! The LDAP conversation: connect (servers in order, TLS always unless loopback), bind,
//! find one user, read their groups. Nothing here touches the database.
//!
//! Every value placed in a filter is escaped (RFC 4515) and every value placed in a DN
//! template is escaped (RFC 4514), so a login name cannot widen a search or name another
//! entry. An empty password never reaches the server: most servers take a simple bind with
//! a name and no password as an anonymous ("unauthenticated") bind, which succeeds.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};

use crate::config::{LdapConfig, LdapServer};
use crate::{Error, Result};

/// LDAP result code of a bind refused for its credentials (RFC 4511 `invalidCredentials`);
/// Active Directory answers it also for disabled, expired and locked accounts.
const INVALID_CREDENTIALS: u32 = 49;
/// `sizeLimitExceeded`: more entries matched than asked for.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// A directory user as the gateway needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    /// The value of the login attribute (the name the user logs in with).
    pub name: String,
    pub mail: Option<String>,
    /// OpenSSH public keys (one per value), when a key attribute is configured.
    pub ssh_keys: Vec<String>,
    /// The DNs of the groups the user is in, as the group search found them.
    pub groups: Vec<String>,
}

/// Why the directory gave no answer: the server could not be reached, TLS failed, the
/// search account was refused, a search failed. Never a verdict on the user's password.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of checking a password against the directory.
#[derive(Debug)]
pub enum Bound {
    /// The password is the user's; the user matches the filter.
    Accepted(Entry),
    /// Wrong password, no such user, or excluded by the user filter (disabled): one
    /// answer for all.
    Refused(&'static str),
}

/// A configured directory: its servers and the TLS trust for them.
pub struct Client {
    config: LdapConfig,
    servers: Vec<LdapServer>,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("servers", &self.servers).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config` (which must be enabled and valid); reads `ca_file` now, so a
    /// missing or broken file stops start-up rather than every login.
    pub fn new(config: &LdapConfig) -> Result<Client> {
        let servers = config.servers()?;
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject;
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| Error::Config(format!("ldap.ca_file: {}: {e}", path.display())))?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| Error::Config(format!("ldap.ca_file: {}: {e}", path.display())))?;
                if certs.is_empty() {
                    return Err(Error::Config(format!("ldap.ca_file: {}: no certificate in it", path.display())));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| Error::Config(format!("ldap.ca_file: {}: {e}", path.display())))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system store may hold certificates rustls cannot use; skip those.
                    let _ = roots.add(cert);
                }
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("ldap: TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client { config: config.clone(), servers, tls: Arc::new(tls) })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs)
    }

    /// A connection to the first server that answers, TLS established.
    async fn connect(&self) -> std::result::Result<Ldap, Unavailable> {
        let mut errors = Vec::new();
        for server in &self.servers {
            // The TCP connection is made here so it can have TCP_NODELAY: LDAP is small
            // requests waiting on small answers, which Nagle's algorithm and delayed ACKs
            // would hold up by tens of milliseconds each.
            let stream = match self.tcp(server).await {
                Ok(s) => s,
                Err(why) => {
                    errors.push(format!("{}: {why}", server.url));
                    continue;
                }
            };
            let settings = LdapConnSettings::new()
                .set_conn_timeout(self.timeout())
                .set_starttls(server.starttls)
                .set_config(self.tls.clone())
                .set_std_stream(ldap3::StdStream::Tcp(stream));
            let connect = LdapConnAsync::with_settings(settings, &server.url);
            match tokio::time::timeout(self.timeout() * 2, connect).await {
                Ok(Ok((conn, mut ldap))) => {
                    tokio::spawn(async move {
                        if let Err(e) = conn.drive().await {
                            tracing::debug!(error = %e, "LDAP connection ended");
                        }
                    });
                    ldap.with_timeout(self.timeout());
                    return Ok(ldap);
                }
                Ok(Err(e)) => errors.push(format!("{}: {}", server.url, describe(&e))),
                Err(_) => errors.push(format!("{}: no answer in {} s", server.url, self.timeout().as_secs() * 2)),
            }
        }
        Err(Unavailable(format!("no directory server answered ({})", errors.join("; "))))
    }

    /// A TCP connection to `server` with TCP_NODELAY, within the timeout.
    async fn tcp(&self, server: &LdapServer) -> std::result::Result<std::net::TcpStream, String> {
        let address = if server.host.contains(':') {
            format!("[{}]:{}", server.host, server.port)
        } else {
            format!("{}:{}", server.host, server.port)
        };
        let stream = match tokio::time::timeout(self.timeout(), tokio::net::TcpStream::connect(&address)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("I/O error: {e}")),
            Err(_) => return Err(format!("no connection in {} s", self.timeout().as_secs())),
        };
        stream.set_nodelay(true).map_err(|e| format!("I/O error: {e}"))?;
        stream.into_std().map_err(|e| format!("I/O error: {e}"))
    }

    /// Binds as the search account.
    async fn service(&self) -> std::result::Result<Ldap, Unavailable> {
        let mut ldap = self.connect().await?;
        let r = ldap
            .with_timeout(self.timeout())
            .simple_bind(&self.config.bind_dn, &self.config.bind_password)
            .await
            .map_err(|e| Unavailable(format!("search account bind: {}", describe(&e))))?;
        if r.rc != 0 {
            let _ = ldap.unbind().await;
            return Err(Unavailable(format!("search account bind refused (result {}: {})", r.rc, r.text)));
        }
        Ok(ldap)
    }

    /// The user filter with the login name: `(&FILTER(ATTR=NAME))`, the name escaped.
    pub fn user_filter(&self, name: &str) -> String {
        let by_name = format!("({}={})", self.config.login_attribute, ldap3::ldap_escape(name));
        if self.config.user_filter.trim().is_empty() {
            by_name
        } else {
            format!("(&{}{by_name})", self.config.user_filter.trim())
        }
    }

    fn attributes(&self) -> Vec<&str> {
        let mut attrs = vec![self.config.login_attribute.as_str()];
        for a in [&self.config.mail_attribute, &self.config.ssh_key_attribute] {
            if !a.is_empty() {
                attrs.push(a);
            }
        }
        attrs
    }

    /// Finds the one entry for `name` over `ldap` (bound as whoever may read it). Two
    /// entries for one name are refused as none: the gateway cannot tell which is meant.
    async fn find(&self, ldap: &mut Ldap, name: &str) -> std::result::Result<Option<Entry>, Unavailable> {
        let filter = self.user_filter(name);
        let r = ldap
            .with_timeout(self.timeout())
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&self.config.user_base, Scope::Subtree, &filter, self.attributes())
            .await
            .map_err(|e| Unavailable(format!("user search: {}", describe(&e))))?;
        let (entries, result) = (r.0, r.1);
        if result.rc != 0 && result.rc != SIZE_LIMIT_EXCEEDED {
            return Err(Unavailable(format!("user search failed (result {}: {})", result.rc, result.text)));
        }
        if entries.len() != 1 {
            if entries.len() > 1 {
                tracing::warn!(filter = %crate::audit::printable(&filter), "more than one directory entry for a login name; refused");
            }
            return Ok(None);
        }
        let entry = SearchEntry::construct(entries.into_iter().next().expect("one entry"));
        let value = |attr: &str| -> Vec<String> {
            if attr.is_empty() {
                return Vec::new();
            }
            let text = entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).map(|(_, v)| v.clone());
            let binary = entry
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .map(|(_, v)| v.iter().filter_map(|b| String::from_utf8(b.clone()).ok()).collect::<Vec<_>>());
            text.into_iter().chain(binary).flatten().collect()
        };
        // The name as the directory spells it: a case-insensitive match must not become a
        // second account.
        let Some(stored_name) = value(&self.config.login_attribute).into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(Entry {
            mail: value(&self.config.mail_attribute).into_iter().next(),
            ssh_keys: value(&self.config.ssh_key_attribute).into_iter().map(|k| k.trim().to_string()).collect(),
            name: stored_name,
            dn: entry.dn,
            groups: Vec::new(),
        }))
    }

    /// The DNs of the groups `dn` is in, by the group filter (nested groups where the filter
    /// asks the server for them). Empty when no group is mapped.
    async fn groups(&self, ldap: &mut Ldap, dn: &str) -> std::result::Result<Vec<String>, Unavailable> {
        if self.config.groups.is_empty() {
            return Ok(Vec::new());
        }
        let filter = self.config.group_filter.replace("{dn}", &ldap3::ldap_escape(dn));
        let base = if self.config.group_base.is_empty() { &self.config.user_base } else { &self.config.group_base };
        let r = ldap
            .with_timeout(self.timeout())
            .search(base, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .map_err(|e| Unavailable(format!("group search: {}", describe(&e))))?;
        if r.1.rc != 0 {
            return Err(Unavailable(format!("group search failed (result {}: {})", r.1.rc, r.1.text)));
        }
        Ok(r.0.into_iter().map(|e| SearchEntry::construct(e).dn).collect())
    }

    /// Checks `password` by binding as the user.
    pub async fn authenticate(&self, name: &str, password: &str) -> std::result::Result<Bound, Unavailable> {
        // An empty password would be an unauthenticated bind, which servers accept.
        if password.is_empty() {
            return Ok(Bound::Refused("empty password"));
        }
        if name.is_empty() || name.contains('\0') {
            return Ok(Bound::Refused("unknown user"));
        }
        let mut ldap;
        let entry = if self.config.searches() {
            ldap = self.service().await?;
            let Some(mut entry) = self.find(&mut ldap, name).await? else {
                let _ = ldap.unbind().await;
                return Ok(Bound::Refused("unknown user"));
            };
            entry.groups = self.groups(&mut ldap, &entry.dn).await?;
            if !self.bind_as(&mut ldap, &entry.dn, password).await? {
                return Ok(Bound::Refused("wrong password"));
            }
            entry
        } else {
            ldap = self.connect().await?;
            let bind_name = self.config.bind_template.replace("{name}", &ldap3::dn_escape(name));
            if !self.bind_as(&mut ldap, &bind_name, password).await? {
                return Ok(Bound::Refused("wrong password"));
            }
            // Bound as the user: their own entry must exist and match the filter.
            let Some(mut entry) = self.find(&mut ldap, name).await? else {
                let _ = ldap.unbind().await;
                return Ok(Bound::Refused("not a user the filter admits"));
            };
            entry.groups = self.groups(&mut ldap, &entry.dn).await?;
            entry
        };
        let _ = ldap.unbind().await;
        Ok(Bound::Accepted(entry))
    }

    /// Binds as `dn` with `password`: `Ok(false)` when the server refuses the credentials.
    async fn bind_as(&self, ldap: &mut Ldap, dn: &str, password: &str) -> std::result::Result<bool, Unavailable> {
        let r = ldap
            .with_timeout(self.timeout())
            .simple_bind(dn, password)
            .await
            .map_err(|e| Unavailable(format!("user bind: {}", describe(&e))))?;
        match r.rc {
            0 => Ok(true),
            INVALID_CREDENTIALS => Ok(false),
            rc => Err(Unavailable(format!("user bind failed (result {rc}: {})", r.text))),
        }
    }

    /// Looks `name` up with the search account, without a password: for public-key logins
    /// and the sync. `None`: no such user, or the filter excludes them (disabled).
    pub async fn lookup(&self, name: &str) -> std::result::Result<Option<Entry>, Unavailable> {
        if !self.config.searches() {
            return Err(Unavailable("no search account (ldap.bind_dn) to look users up with".into()));
        }
        if name.is_empty() || name.contains('\0') {
            return Ok(None);
        }
        let mut ldap = self.service().await?;
        let found = match self.find(&mut ldap, name).await? {
            Some(mut entry) => {
                entry.groups = self.groups(&mut ldap, &entry.dn).await?;
                Some(entry)
            }
            None => None,
        };
        let _ = ldap.unbind().await;
        Ok(found)
    }

    /// Binds as the search account (or, with direct binds, just connects) and reads the user
    /// base: the administrator's "test bind".
    pub async fn test(&self) -> std::result::Result<String, Unavailable> {
        if !self.config.searches() {
            let ldap = self.connect().await?;
            drop(ldap);
            return Ok("connected with TLS (direct binds: no search account to test)".into());
        }
        let mut ldap = self.service().await?;
        let r = ldap
            .with_timeout(self.timeout())
            .search(&self.config.user_base, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| Unavailable(format!("reading the user base: {}", describe(&e))))?;
        let _ = ldap.unbind().await;
        if r.1.rc != 0 {
            return Err(Unavailable(format!("reading the user base failed (result {}: {})", r.1.rc, r.1.text)));
        }
        Ok("the search account bound and can read the user base".into())
    }
}

/// An LDAP error as an administrator reads it (no secret is ever in one).
fn describe(e: &LdapError) -> String {
    let text = e.to_string();
    crate::text::cut(&crate::audit::printable(&text), 300).to_string()
}

/// Compares group DNs as directories do for the common cases: case-insensitive, spaces
/// after separators ignored.
pub fn same_dn(a: &str, b: &str) -> bool {
    normal_dn(a) == normal_dn(b)
}

fn normal_dn(dn: &str) -> String {
    dn.split(',').map(|rdn| rdn.trim().to_ascii_lowercase()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(filter: &str) -> Client {
        let config = LdapConfig {
            urls: vec!["ldap://127.0.0.1:1".into()],
            bind_dn: "cn=gw".into(),
            bind_password: "pw".into(),
            user_base: "dc=x".into(),
            user_filter: filter.into(),
            ca_file: None,
            ..LdapConfig::default()
        };
        Client::new(&config).expect("client")
    }

    #[test]
    fn filter_metacharacters_are_escaped() {
        let c = client("(objectClass=person)");
        assert_eq!(c.user_filter("alice"), "(&(objectClass=person)(uid=alice))");
        // RFC 4515: * ( ) \ NUL become \2a \28 \29 \5c \00.
        assert_eq!(c.user_filter("*"), "(&(objectClass=person)(uid=\\2a))");
        assert_eq!(c.user_filter("x)(uid=*"), "(&(objectClass=person)(uid=x\\29\\28uid=\\2a))");
        assert_eq!(c.user_filter("a\\b"), "(&(objectClass=person)(uid=a\\5cb))");
        assert_eq!(c.user_filter("a\0b"), "(&(objectClass=person)(uid=a\\00b))");
        // Whatever the name, the filter stays one balanced expression.
        for hostile in ["*)(|(uid=*", "admin)(&)", "((((", "))))", "\\", "*"] {
            let f = c.user_filter(hostile);
            let depth = f.chars().fold(0i32, |d, ch| match ch {
                '(' => d + 1,
                ')' => d - 1,
                _ => d,
            });
            assert_eq!(depth, 0, "{f}");
            assert!(!f.contains("=*"), "{f}");
        }
        assert_eq!(client("").user_filter("bob"), "(uid=bob)");
    }

    #[tokio::test]
    async fn an_empty_password_never_reaches_the_server() {
        // Port 1 on loopback: nothing listens, so reaching the server would be an error.
        let c = client("(objectClass=person)");
        assert!(matches!(c.authenticate("alice", "").await, Ok(Bound::Refused("empty password"))));
        assert!(matches!(c.authenticate("alice", "pw").await, Err(Unavailable(_))));
    }

    #[test]
    fn group_dns_compare_loosely() {
        assert!(same_dn("CN=Ops, OU=Groups,DC=Example,DC=com", "cn=ops,ou=groups,dc=example,dc=com"));
        assert!(!same_dn("cn=ops,dc=a", "cn=ops2,dc=a"));
    }
}
