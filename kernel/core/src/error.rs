//! What fails at the core's boundary, already in the domain's terms.

use kith_domain::FieldError;

/// Errors of the core and of the storage behind its ports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist in this shop (or at all).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A value was refused.
    #[error("{0}")]
    Invalid(FieldError),
    /// The machine failed rather than the data or the code: the same call may succeed
    /// later unchanged. Backends say which of their failures these are.
    #[error("storage unavailable ({0:?}): {1}")]
    Unavailable(Unavailable, anyhow::Error),
    /// The storage failed; details are for the log, not for clients.
    #[error("storage failure: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<FieldError> for Error {
    fn from(err: FieldError) -> Self {
        Error::Invalid(err)
    }
}

impl Error {
    /// Whether the machine failed, and how (see [`Unavailable`]).
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            Error::Unavailable(kind, _) => Some(*kind),
            _ => None,
        }
    }
}

/// A storage failure of the machine rather than of the data or the code: the same
/// call may succeed later unchanged, once space is freed or the disk answers again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The disk is full: nothing more can be written until space is freed.
    Full,
    /// The disk failed a read or a write, the database could not be reached, or
    /// another process kept it locked beyond the backend's timeout.
    Io,
}

/// Who performed a write, for the audit log and merge records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The API key, when the write came through the API.
    pub key_id: Option<String>,
    /// A human-readable label: the key id, `cli`, or `import:<file>`.
    pub label: String,
}

impl Actor {
    pub fn key(key_id: &str) -> Self {
        Actor { key_id: Some(key_id.to_owned()), label: key_id.to_owned() }
    }

    pub fn cli(label: &str) -> Self {
        Actor { key_id: None, label: label.to_owned() }
    }
}
