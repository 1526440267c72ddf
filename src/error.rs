//! The crate's error type. Callers branch on the variant (config errors exit 2,
//! a locked data directory gets its own message); the API maps errors to HTTP
//! status codes in one place, `api::reject`.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid: the message names the setting and quotes the value.
    #[error("{0}")]
    Config(String),
    /// Another process holds the sled lock on the data directory.
    #[error("data directory is in use by another process: {}", .0.display())]
    DataDirInUse(PathBuf),
    /// The data directory cannot be opened, read or written, or holds data we cannot decode.
    #[error("data directory {}: {message}", .dir.display())]
    Store { dir: PathBuf, message: String },
    /// The caller asked for something invalid (bad query, bad body).
    #[error("{0}")]
    BadRequest(String),
    /// A cap was reached (for example the number of distinct series).
    #[error("{0}")]
    Capacity(String),
    /// The request clashes with work in progress (a backup already running).
    #[error("{0}")]
    Conflict(String),
    /// A backup or a restore cannot go on: a damaged archive, a directory
    /// that is not empty. The message says which and why.
    #[error("{0}")]
    Backup(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A bug of ours (a task panicked); never caused by input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}
