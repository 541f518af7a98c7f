//! The runtime object-store requests run on.
//!
//! An HTTP client's pooled connections belong to the runtime that opened
//! them; jobs start, checkpoint and stop on several runtimes (the server's,
//! a test's single-threaded one), and recovery's reads are made from
//! synchronous code (`runtime::job::start`). Running every request on one
//! runtime of its own, alive for the process, keeps connections usable
//! wherever they are asked for, and lets synchronous callers wait without
//! stalling the runtime the request needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio::task::JoinHandle;

use crate::error::{EngineError, Result};

/// Worker threads of the I/O runtime: requests mostly wait on the network.
const THREADS: usize = 2;

fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(THREADS)
                .thread_name("weir-object-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::State(format!("cannot start the object store's I/O runtime: {e}")))
}

fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| EngineError::State(format!("an object store request ended abnormally: {e}")))?
}

/// Runs `work` on the I/O runtime and awaits it. Dropping the returned
/// future cancels the work, as dropping any future does: a coordinator
/// stopped mid-upload does not leave the upload running behind the job's
/// end (which deletes the job's objects).
pub(super) async fn run<T: Send + 'static>(work: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    joined(AbortOnDrop(runtime()?.spawn(work)).await)
}

/// A task of the I/O runtime, aborted when whoever awaits it goes.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = std::result::Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs `work` on the I/O runtime and waits for it from synchronous code.
/// On a worker of a multi-threaded runtime the wait is announced
/// (`block_in_place`), so that the worker's other tasks move elsewhere.
pub(super) fn block<T: Send + 'static>(work: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    let handle = runtime()?.spawn(work);
    let wait = || futures::executor::block_on(handle);
    let r = match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
        _ => wait(),
    };
    joined(r)
}
