//! Library errors. Every variant names what was wrong and how to fix it.
use thiserror::Error;

/// Errors returned by the ketasim library.
#[derive(Debug, Error)]
pub enum Error {
    /// A scenario file could not be read, parsed or validated.
    #[error("{file}: {message}")]
    Scenario {
        /// The scenario's file name (or `<embedded:NAME>`).
        file: String,
        /// What is wrong, naming the field and what is allowed.
        message: String,
    },
    /// A `--set` override was malformed or named a missing field.
    #[error("--set {expr}: {message}")]
    Override {
        /// The override as given.
        expr: String,
        /// What is wrong.
        message: String,
    },
    /// The network does not fit the device (or the host) limits.
    #[error("{0}")]
    Capacity(String),
    /// No GPU adapter or device could be obtained.
    #[error("no GPU: {0}")]
    NoGpu(String),
    /// A GPU operation failed (validation, out of memory, lost device, mapping).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The integration became unstable in a run: the results would be artefacts of
    /// the time step (`backend::check_stable`).
    #[error("{message}")]
    Unstable {
        /// The population (index in the simulation) where it did.
        pop: usize,
        /// What happened, where, and the fix.
        message: String,
    },
    /// A library function was called with arguments that contradict the network
    /// (a programming error in the caller, not a user input).
    #[error("internal error: {0}")]
    Internal(String),
    /// A figure could not be drawn or written.
    #[error(transparent)]
    Figure(#[from] crate::figures::FigureError),
    /// Output files could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path being written or read.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias for the library.
pub type Result<T> = std::result::Result<T, Error>;
