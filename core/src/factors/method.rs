//! [`Method`], the name of each second-factor method, and [`MethodSet`], the methods a
//! policy or a group allows.

use std::fmt;
use std::str::FromStr;

use crate::Result;

/// A second-factor method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Totp,
    BackupCode,
    Keyword,
    Email,
    Yubikey,
    Duo,
    Radius,
    Webauthn,
    SshSk,
}

impl Method {
    pub const ALL: [Method; 9] = [
        Method::Totp,
        Method::BackupCode,
        Method::Keyword,
        Method::Email,
        Method::Yubikey,
        Method::Duo,
        Method::Radius,
        Method::Webauthn,
        Method::SshSk,
    ];

    /// The stable name used in the database, the CLI and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::BackupCode => "backup-code",
            Method::Keyword => "keyword",
            Method::Email => "email",
            Method::Yubikey => "yubikey",
            Method::Duo => "duo",
            Method::Radius => "radius",
            Method::Webauthn => "webauthn",
            Method::SshSk => "ssh-sk",
        }
    }

    /// What people call it, as prompts show it.
    pub fn label(self) -> &'static str {
        match self {
            Method::Totp => "Authenticator code",
            Method::BackupCode => "Backup code",
            Method::Keyword => "Access keyword",
            Method::Email => "Email code",
            Method::Yubikey => "YubiKey OTP",
            Method::Duo => "Duo",
            Method::Radius => "RADIUS",
            Method::Webauthn => "Security key or passkey",
            Method::SshSk => "Security key (SSH)",
        }
    }

    /// Backup codes are a fallback: passing one never makes it the default method.
    pub fn becomes_default(self) -> bool {
        self != Method::BackupCode
    }

    /// Whether the web login can ask for it: a security key used as an SSH key signs only
    /// in an SSH public-key round.
    pub fn on_web(self) -> bool {
        self != Method::SshSk
    }

    /// Whether the SSH gate asks for it in a public-key round (a signature by a registered
    /// security key) rather than at its keyboard-interactive prompt.
    pub fn signs_over_ssh(self) -> bool {
        self == Method::SshSk
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Method> {
        let s = s.trim().to_ascii_lowercase();
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s || (s == "backup-codes" && *m == Method::BackupCode))
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.as_str()).collect();
                crate::Error::invalid(
                    "method",
                    format!("'{}' is not one of {}", crate::audit::printable(&s), names.join(", ")),
                )
            })
    }
}

/// A set of methods (allowed methods of the policy or a group).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MethodSet(Vec<Method>);

impl MethodSet {
    pub fn all() -> Self {
        MethodSet(Method::ALL.to_vec())
    }

    pub fn contains(&self, m: Method) -> bool {
        self.0.contains(&m)
    }

    pub fn methods(&self) -> &[Method] {
        &self.0
    }

    /// The methods in both sets.
    pub fn intersect(&self, other: &MethodSet) -> MethodSet {
        MethodSet(self.0.iter().copied().filter(|m| other.contains(*m)).collect())
    }

    /// Parses a comma-separated list (`totp,keyword`); the error names the bad entry.
    pub fn parse_list(s: &str) -> Result<MethodSet> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let m: Method = part.parse()?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        if out.is_empty() {
            return Err(crate::Error::invalid("methods", "name at least one method"));
        }
        out.sort();
        Ok(MethodSet(out))
    }

    /// Reads the stored form, skipping names this version does not know.
    pub(crate) fn parse_stored(s: &str) -> MethodSet {
        let mut out: Vec<Method> = s.split(',').filter_map(|p| p.parse().ok()).collect();
        out.sort();
        out.dedup();
        MethodSet(out)
    }

    pub(crate) fn to_stored(&self) -> String {
        self.0.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",")
    }
}

impl From<&[Method]> for MethodSet {
    fn from(m: &[Method]) -> Self {
        let mut v = m.to_vec();
        v.sort();
        v.dedup();
        MethodSet(v)
    }
}

impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}
