//! Errors raised while a job runs.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Everything that can stop a running job, with enough context for the user
/// to find the cause (which operator, which file, which record).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A DataFusion kernel (expression, accumulator) failed.
    #[error("{context}: {source}")]
    DataFusion {
        context: String,
        #[source]
        source: DataFusionError,
    },
    /// An Arrow kernel failed.
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: ArrowError,
    },
    /// A connector could not read or write its data.
    #[error("{0}")]
    Connector(String),
    /// An I/O error with the path or resource it concerns.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A task of the job ended abnormally (panic or cancellation).
    #[error("task {task} failed: {message}")]
    Task { task: String, message: String },
    /// Checkpointed state cannot be written or read back.
    #[error("state: {0}")]
    State(String),
    /// The plan cannot be run as given (a bug in planning, or a bad setting).
    #[error("invalid plan: {0}")]
    Plan(String),
    /// Intact saved state that does not fit the job (written by another
    /// query, another Weir, or another state format): refused, never
    /// misread, and never a reason to fall back to an older checkpoint.
    #[error("{0}")]
    Incompatible(String),
}

/// Attach a human context to DataFusion and Arrow results.
pub trait ResultExt<T> {
    /// Wraps the error with `context` (typically the operator's name).
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ResultExt<T> for std::result::Result<T, DataFusionError> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| EngineError::DataFusion {
            context: context(),
            source,
        })
    }
}

impl<T> ResultExt<T> for std::result::Result<T, ArrowError> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| EngineError::Arrow {
            context: context(),
            source,
        })
    }
}

impl<T> ResultExt<T> for std::result::Result<T, std::io::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| EngineError::Io {
            context: context(),
            source,
        })
    }
}
