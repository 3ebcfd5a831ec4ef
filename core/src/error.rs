//! The error type of the domain crate: variants a caller can act on.

/// Errors from the domain layer. Messages are safe to show to an administrator: they never
/// contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} '{name}' not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} '{name}' already exists")]
    Duplicate { kind: &'static str, name: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("secrets: {0}")]
    Secrets(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A service the gateway depends on (the SMTP relay, …) did not do its part.
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests of one kind in a short time (mails to one user).
    #[error("{0}")]
    TooMany(String),
    /// An action that the current state does not allow (a second host key rotation
    /// before the first is retired); the text says what to do instead.
    #[error("{0}")]
    Refused(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { field, reason: reason.into() }
    }

    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound { kind, name: name.into() }
    }

    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }

    /// Maps a unique-constraint violation to [`Error::Duplicate`], anything else unchanged.
    pub fn from_insert(err: sqlx::Error, kind: &'static str, name: &str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Error::Duplicate { kind, name: name.to_string() },
            _ => Error::Database(err),
        }
    }
}
