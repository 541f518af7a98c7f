//! Accepts clients and bounds how many are served at once.
//!
//! Up to `--max-connections` are served; as many again are let in only to
//! be told `53300` at login (as PostgreSQL does) or to send a
//! CancelRequest, which comes on a connection of its own and must work
//! when the server is full; beyond that a connection is closed at once, so
//! that a flood of sockets cannot use up the process's file descriptors.

use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{Handlers, connection};

/// How long to wait after accept fails (no file descriptor left, most
/// likely) before trying again, rather than spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves every client of `listener` on a task of its own; never returns.
pub async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, handlers: Arc<Handlers>) -> std::convert::Infallible {
    let served = Arc::new(Semaphore::new(handlers.limits.max_connections));
    let refused = Arc::new(Semaphore::new(handlers.limits.max_connections));
    loop {
        let (tcp, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("cannot accept a pgwire connection: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // The permit is held for the connection's life.
        let (permit, admitted) = match Arc::clone(&served).try_acquire_owned() {
            Ok(permit) => (permit, true),
            Err(_) => match Arc::clone(&refused).try_acquire_owned() {
                Ok(permit) => (permit, false),
                Err(_) => {
                    tracing::warn!(%client, "connection closed at once: {} connections already, and as many being refused", handlers.limits.max_connections);
                    continue;
                }
            },
        };
        let tls = tls.clone();
        let handlers = Arc::clone(&handlers);
        tokio::spawn(async move {
            if let Err(e) = connection::serve(tcp, tls, handlers, admitted).await {
                tracing::debug!(%client, "connection ended: {e}");
            }
            drop(permit);
        });
    }
}
