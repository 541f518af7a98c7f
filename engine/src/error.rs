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
    /// A record a source read does not fit its table's format (with
    /// `ignore-parse-errors` off): the data is wrong, and reading it again
    /// fails again. The message names the record (`file:line`,
    /// `topic/partition:offset`).
    #[error("{0}")]
    Record(String),
    /// A system outside Weir refused the job's data or statement for good
    /// (a constraint the rows break, a table or column that is not there):
    /// it is up, and would refuse the same again.
    #[error("{0}")]
    Refused(String),
    /// An I/O error with the path or resource it concerns.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A task of the job ended abnormally: its own error (whose `kind`
    /// it keeps, for the job's status and restarts), a panic, or a task
    /// it depends on stopping.
    #[error("task {task} failed: {message}")]
    Task { task: String, message: String, kind: ErrorKind },
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

/// Whose problem an error is: what a client should be told, and whether a
/// restart can help. Decided from the error's type (its source), never
/// from its message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The query, a setting, a record or the state the user supplied is
    /// wrong (a division by zero, a value that does not cast, saved state
    /// of another query): retrying the same thing fails the same way, so
    /// the user has to change something.
    User,
    /// A system outside Weir (a broker, the filesystem, an object store,
    /// the network, a lookup database) failed: the same job may succeed
    /// when retried.
    External,
    /// A bug in Weir (a plan it cannot run, a panicked task): retrying
    /// does not fix it; report it.
    Internal,
}

impl ErrorKind {
    /// Whether running the same thing again may succeed: only a failure
    /// outside Weir can go away by itself.
    pub fn retryable(self) -> bool {
        self == ErrorKind::External
    }
}

/// What a task fails with when the task it reads from stopped: a
/// consequence of that task's own failure.
pub(crate) const UPSTREAM_STOPPED: &str = "an upstream task stopped before its input ended";

/// What a task fails with when the task it sends to stopped.
pub(crate) const DOWNSTREAM_STOPPED: &str = "the downstream task stopped";

impl EngineError {
    /// Whether this is only another task's failure seen from a neighbour
    /// (its channel closed), not a cause of its own.
    pub fn is_consequence(&self) -> bool {
        matches!(self, EngineError::Task { message, .. } if message == UPSTREAM_STOPPED || message == DOWNSTREAM_STOPPED)
    }

    /// Whether a disk had no room for what was written (full, or over a
    /// quota): the machine's state, not the data's, so a restore that
    /// fails this way has not found its checkpoint damaged.
    /// The I/O error may be DataFusion's (a spill file its `DiskManager`
    /// could not create), so the whole chain of sources is looked at.
    pub fn is_out_of_room(&self) -> bool {
        use std::io::ErrorKind::{QuotaExceeded, StorageFull};
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| matches!(io.kind(), StorageFull | QuotaExceeded)) {
                return true;
            }
            cause = e.source();
        }
        false
    }

    /// Whose problem this is (see [`ErrorKind`]), so that pgwire picks a
    /// SQLSTATE and a restart strategy decides what to retry without
    /// reading the message.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::DataFusion { source, .. } => datafusion_kind(source),
            EngineError::Arrow { source, .. } => arrow_kind(source),
            // Every I/O error concerns a file, a directory or a socket.
            EngineError::Io { .. } => ErrorKind::External,
            // Raised by connectors about their system (a broker, a lookup
            // database, a file that changed); the message carries no type
            // that would single out a malformed record.
            EngineError::Connector(_) => ErrorKind::External,
            // The record is as it was written: only the user can change it.
            EngineError::Record(_) => ErrorKind::User,
            // The system answered: the query or the data must change.
            EngineError::Refused(_) => ErrorKind::User,
            // The state store (the disk under it) failed, or what it gave
            // back is damaged: recovery and restarts deal with both.
            EngineError::State(_) => ErrorKind::External,
            // The job runner wraps a task's failure with the cause's kind;
            // a panic or a stopped neighbour is internal.
            EngineError::Task { kind, .. } => *kind,
            // The planner should have refused whatever the engine cannot
            // run.
            EngineError::Plan(_) => ErrorKind::Internal,
            // Intact state that belongs to another query or version: the
            // user picks the state, and it will never fit this job.
            EngineError::Incompatible(_) => ErrorKind::User,
        }
    }

    /// Whether restarting the job (from its last checkpoint) may get past
    /// this error: true for failures outside Weir only.
    pub fn retryable(&self) -> bool {
        self.kind().retryable()
    }

    /// Where in the job the error arose, as the code that raised it named
    /// it: an operator and what it was doing (`window_agg: aggregating`),
    /// or a task (`source clicks`). Shown as is, never parsed: the name is
    /// not kept apart from the activity. `None` where no such place was
    /// recorded; an I/O error's context names a file, not an operator.
    pub fn operator(&self) -> Option<&str> {
        match self {
            EngineError::DataFusion { context, .. } | EngineError::Arrow { context, .. } => {
                Some(context)
            }
            EngineError::Task { task, .. } => Some(task),
            _ => None,
        }
    }
}

/// The kind of a DataFusion error, from its innermost DataFusion error
/// ([`DataFusionError::find_root`]: the context and diagnostics around it
/// only describe where it was met). Shared with the SQL layer and pgwire,
/// which see DataFusion's errors directly.
pub fn datafusion_kind(e: &DataFusionError) -> ErrorKind {
    match e.find_root() {
        DataFusionError::ArrowError(a, _) => arrow_kind(a),
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => ErrorKind::External,
        // Memory (or another pool) ran out: may pass once others let go.
        DataFusionError::ResourcesExhausted(_) => ErrorKind::External,
        // A library's or a UDF's own error: a kernel's Arrow error or an
        // I/O error keeps its kind, anything else came from outside.
        DataFusionError::External(inner) => {
            boxed_kind(inner.as_ref()).unwrap_or(ErrorKind::External)
        }
        // What the statement says (planning) or what its expressions did
        // to the rows (`exec_err!`: a bad argument, a value out of range).
        DataFusionError::SQL(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Plan(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::Execution(_) => ErrorKind::User,
        DataFusionError::Collection(errors) => {
            errors.first().map_or(ErrorKind::Internal, datafusion_kind)
        }
        // A broken invariant, a panicked DataFusion task, a plugin, or a
        // wrapper `find_root` has already looked through.
        _ => ErrorKind::Internal,
    }
}

/// The kind of an Arrow error: what a kernel said about the values it was
/// given (the user's), about the bytes it read (outside), or about how it
/// was called (Weir's).
pub fn arrow_kind(e: &ArrowError) -> ErrorKind {
    match e {
        ArrowError::DivideByZero
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::ComputeError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::NotYetImplemented(_)
        | ArrowError::CsvError(_)
        | ArrowError::JsonError(_)
        | ArrowError::AvroError(_)
        // Offsets or dictionary keys beyond their type: the user's values
        // are too large for one array.
        | ArrowError::OffsetOverflowError(_)
        | ArrowError::DictionaryKeyOverflowError
        | ArrowError::RunEndIndexOverflowError => ErrorKind::User,
        ArrowError::IoError(..) | ArrowError::MemoryError(_) | ArrowError::ParquetError(_) => ErrorKind::External,
        ArrowError::ExternalError(inner) => boxed_kind(inner.as_ref()).unwrap_or(ErrorKind::External),
        ArrowError::SchemaError(_) | ArrowError::IpcError(_) | ArrowError::CDataInterface(_) => ErrorKind::Internal,
    }
}

/// The kind of an error boxed inside DataFusion's or Arrow's "external"
/// variants, when its type is one Weir knows.
fn boxed_kind(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<ErrorKind> {
    if let Some(e) = e.downcast_ref::<DataFusionError>() {
        Some(datafusion_kind(e))
    } else if let Some(e) = e.downcast_ref::<ArrowError>() {
        Some(arrow_kind(e))
    } else if let Some(e) = e.downcast_ref::<EngineError>() {
        Some(e.kind())
    } else if e.is::<std::io::Error>() {
        Some(ErrorKind::External)
    } else {
        None
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::compute::kernels::numeric;
    use datafusion::arrow::compute::{CastOptions, cast_with_options};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// A real division by zero from Arrow's kernel.
    fn divide_by_zero() -> ArrowError {
        let ones = Int32Array::from(vec![1]);
        let zeros = Int32Array::from(vec![0]);
        numeric::div(&ones, &zeros).expect_err("1 / 0")
    }

    /// A real failed cast of text to a number.
    fn bad_cast() -> ArrowError {
        let text = StringArray::from(vec!["x"]);
        let strict = CastOptions {
            safe: false,
            ..Default::default()
        };
        cast_with_options(&text, &DataType::Int32, &strict).expect_err("'x' as INT")
    }

    /// A real I/O error.
    fn missing_file() -> std::io::Error {
        std::fs::read("/nonexistent/weir/error-kind-test").expect_err("no such file")
    }

    fn df(source: DataFusionError) -> EngineError {
        EngineError::DataFusion {
            context: "filter: evaluating".into(),
            source,
        }
    }

    /// What a query DataFusion runs fails with.
    async fn run(sql: &str) -> DataFusionError {
        let ctx = SessionContext::new();
        let result = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        result.expect_err(sql)
    }

    #[test]
    fn every_variant_has_a_kind_and_a_retry_hint() {
        let cases = [
            (
                EngineError::Arrow {
                    context: "project: evaluating".into(),
                    source: divide_by_zero(),
                },
                ErrorKind::User,
            ),
            (
                EngineError::Arrow {
                    context: "project: evaluating".into(),
                    source: bad_cast(),
                },
                ErrorKind::User,
            ),
            (
                EngineError::Io {
                    context: "reading 'in.json'".into(),
                    source: missing_file(),
                },
                ErrorKind::External,
            ),
            (
                EngineError::Connector("kafka: broker down".into()),
                ErrorKind::External,
            ),
            (
                EngineError::State("checkpoint 3: state of t fails its checksum".into()),
                ErrorKind::External,
            ),
            (
                EngineError::Task {
                    task: "source s".into(),
                    message: "panicked".into(),
                    kind: ErrorKind::Internal,
                },
                ErrorKind::Internal,
            ),
            (
                EngineError::Plan("stage 1 reads from later stage 2".into()),
                ErrorKind::Internal,
            ),
            (
                EngineError::Incompatible("state of another query".into()),
                ErrorKind::User,
            ),
            (
                EngineError::Record("in.json:7: cannot decode record: expected a number: x".into()),
                ErrorKind::User,
            ),
            (
                EngineError::Refused("postgres table t: violates check constraint".into()),
                ErrorKind::User,
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
            assert_eq!(e.retryable(), kind == ErrorKind::External, "{e}");
        }
        // Its message is unchanged.
        assert_eq!(
            EngineError::Incompatible("state of another query".into()).to_string(),
            "state of another query"
        );
    }

    #[test]
    fn a_datafusion_error_has_the_kind_of_its_cause() {
        let user = [
            DataFusionError::from(divide_by_zero()),
            DataFusionError::from(bad_cast()),
            DataFusionError::Execution("argument out of range".into()),
            DataFusionError::Plan("no such column".into()),
            // Wrapped as DataFusion wraps errors crossing a stream.
            DataFusionError::from(divide_by_zero()).context("projection"),
            DataFusionError::External(Box::new(divide_by_zero())),
            DataFusionError::from(ArrowError::ExternalError(Box::new(
                DataFusionError::Execution("bad".into()),
            ))),
        ];
        let external = [
            DataFusionError::IoError(missing_file()),
            DataFusionError::ObjectStore(Box::new(datafusion::object_store::Error::Generic {
                store: "s3",
                source: Box::new(missing_file()),
            })),
            DataFusionError::External(Box::new(missing_file())),
            DataFusionError::External("a lookup database went away".into()),
            DataFusionError::ResourcesExhausted("memory".into()),
            DataFusionError::from(ArrowError::IoError("reading".into(), missing_file())),
        ];
        let internal = [
            DataFusionError::Internal("invariant broken".into()),
            DataFusionError::Internal("invariant broken".into()).context("while aggregating"),
            DataFusionError::Shared(Arc::new(DataFusionError::Internal("shared".into()))),
            DataFusionError::from(ArrowError::SchemaError("columns differ".into())),
        ];
        for (errors, kind) in [
            (Vec::from(user), ErrorKind::User),
            (Vec::from(external), ErrorKind::External),
        ] {
            for e in errors {
                assert_eq!(datafusion_kind(&e), kind, "{e}");
                let e = df(e);
                assert_eq!(
                    (e.kind(), e.retryable()),
                    (kind, kind == ErrorKind::External),
                    "{e}"
                );
            }
        }
        for e in internal {
            assert_eq!(df(e).kind(), ErrorKind::Internal);
        }
    }

    #[tokio::test]
    async fn failures_of_real_queries_are_the_users() {
        for sql in [
            "SELECT a / 0 FROM (VALUES (1), (2)) AS t(a)",
            "SELECT CAST(a AS INT) FROM (VALUES ('x')) AS t(a)",
            "SELECT nope FROM (VALUES (1)) AS t(a)",
        ] {
            let e = run(sql).await;
            assert_eq!(datafusion_kind(&e), ErrorKind::User, "{sql}: {e:?}");
        }
    }

    #[test]
    fn the_operator_is_where_the_error_was_raised() {
        assert_eq!(
            df(DataFusionError::Execution("x".into())).operator(),
            Some("filter: evaluating")
        );
        let task = EngineError::Task {
            task: "source clicks".into(),
            message: "stopped".into(),
            kind: ErrorKind::Internal,
        };
        assert_eq!(task.operator(), Some("source clicks"));
        let io = EngineError::Io {
            context: "reading 'in.json'".into(),
            source: missing_file(),
        };
        assert_eq!(io.operator(), None);
        assert_eq!(EngineError::Plan("x".into()).operator(), None);
    }

    /// A full disk or a quota is out of room, whether Weir's own I/O or
    /// DataFusion's (a spill file it could not create) saw it; other I/O
    /// errors (a missing file: a damaged checkpoint) are not.
    #[test]
    fn out_of_room_is_found_through_the_sources() {
        let io = |kind| std::io::Error::from(kind);
        let own = |kind| EngineError::Io { context: "spilling".into(), source: io(kind) };
        let datafusion = |kind| EngineError::DataFusion {
            context: "spilling".into(),
            source: DataFusionError::IoError(io(kind)),
        };
        for kind in [std::io::ErrorKind::StorageFull, std::io::ErrorKind::QuotaExceeded] {
            assert!(own(kind).is_out_of_room() && datafusion(kind).is_out_of_room(), "{kind:?}");
        }
        assert!(!own(std::io::ErrorKind::NotFound).is_out_of_room());
        assert!(!datafusion(std::io::ErrorKind::NotFound).is_out_of_room());
        assert!(!EngineError::State("No space left on device".into()).is_out_of_room());
    }
}
