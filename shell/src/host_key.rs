//! Host key pinning: the decision whether the key a target presents is the one the gateway
//! expects. Kept apart from the SSH client so the rule reads (and is tested) on its own.
//!
//! - A pinned key must match exactly (same algorithm and key data); anything else refuses
//!   the connection, naming both fingerprints.
//! - With nothing pinned, the key is accepted once and recorded (trust on first use) by
//!   the caller, who also audits it.

use russh::keys::{HashAlg, PublicKey};

/// The outcome of comparing a presented key with the pinned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// Nothing pinned: accept and record this key.
    FirstUse,
    /// Refuse: fingerprints of the pinned and the presented keys.
    Mismatch {
        pinned: String,
        presented: String,
    },
}

/// SHA256 fingerprint as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Compares `presented` with the pinned OpenSSH line. A pinned line that does not parse
/// counts as a mismatch: it is never silently replaced.
pub fn verify(pinned: Option<&str>, presented: &PublicKey) -> Verdict {
    let Some(line) = pinned else { return Verdict::FirstUse };
    match PublicKey::from_openssh(line.trim()) {
        Ok(p) if p.key_data() == presented.key_data() => Verdict::Match,
        Ok(p) => Verdict::Mismatch { pinned: fingerprint(&p), presented: fingerprint(presented) },
        Err(_) => Verdict::Mismatch { pinned: "(unreadable pinned key)".into(), presented: fingerprint(presented) },
    }
}

/// The presented key as the one-line OpenSSH form the database stores.
pub fn to_line(key: &PublicKey) -> Option<String> {
    let mut bare = key.clone();
    bare.set_comment("");
    bare.to_openssh().ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIERDMdfYLAzrGB1EWvCkK3R0n6Dn8T11oxke57KVY0i8";
    const B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAmwke5LzpZCwp661M6puEA94jHWpuSrlsSEh+/TTg+v";

    #[test]
    fn pinned_key_must_match() {
        let a = PublicKey::from_openssh(A).unwrap();
        let b = PublicKey::from_openssh(B).unwrap();
        assert_eq!(verify(Some(A), &a), Verdict::Match);
        assert_eq!(verify(Some(&format!("{A} comment")), &a), Verdict::Match);
        assert_eq!(verify(None, &a), Verdict::FirstUse);
        match verify(Some(A), &b) {
            Verdict::Mismatch { pinned, presented } => {
                assert_eq!(pinned, fingerprint(&a));
                assert_eq!(presented, fingerprint(&b));
                assert!(pinned.starts_with("SHA256:"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(verify(Some("garbage"), &a), Verdict::Mismatch { .. }));
        assert_eq!(to_line(&a).as_deref(), Some(A));
    }
}
