//! Errors of the shell. Their messages are shown to the user in the terminal, so they say
//! what happened in words a user can act on and never carry a secret.

/// Why a target could not be reached or a session could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("no target named '{0}' is granted to you")]
    NotGranted(String),
    #[error("a second factor must be enrolled before any target can be reached")]
    EnrollmentRequired,
    #[error("your login no longer stands ({0}); log in again")]
    Withdrawn(gatehouse_core::access::Withdrawn),
    #[error("could not reach {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error(
        "REFUSED: the host key of {target} has changed.\n  pinned:    {pinned}\n  presented: {presented}\n\
         This may be an attack, or the server was reinstalled. An administrator must re-pin the key."
    )]
    HostKeyMismatch { target: String, pinned: String, presented: String },
    #[error("{target} presented a host certificate; only plain host keys can be pinned")]
    HostCertificate { target: String },
    #[error("{target} rejected the gateway's credential for user {user}")]
    AuthRejected { target: String, user: String },
    #[error("{target} refused to start the {what}")]
    RequestRefused { target: String, what: String },
    #[error("the stored credential of {target} is unusable: {reason}")]
    Credential { target: String, reason: String },
    #[error("SSH error talking to {target}: {source}")]
    Ssh { target: String, source: russh::Error },
    #[error("recording failed: {0}")]
    Recording(String),
    #[error(transparent)]
    Core(#[from] gatehouse_core::Error),
}
