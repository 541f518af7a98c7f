//! One client's connection, from TLS negotiation to its last message.
//!
//! pgwire decodes and answers each message (`process_message`); this loop
//! decides what surrounds it: who is let in, how long a login and an idle
//! connection may take, and what stops a message being answered — a
//! CancelRequest, the statement timeout, the client leaving — or turns a
//! panic while answering it into an error for that message alone.

use std::io;
use std::os::fd::AsFd;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};
use datafusion_postgres::pgwire::messages::PgWireFrontendMessage;
use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use datafusion_postgres::pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use futures::{FutureExt, StreamExt};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::Handlers;
use super::limits::{Interruption, idle_timeout, too_many_connections};

/// How long a client may take to log in, as PostgreSQL's
/// `authentication_timeout`.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Where datafusion-postgres keeps a connection's `statement_timeout` (in
/// milliseconds): its `SET statement_timeout` writes it and `SHOW` reads
/// it, so Weir's default and its enforcement use the same entry.
const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

/// `internal_error`
const INTERNAL_ERROR: &str = "XX000";

/// Serves `tcp` until the client leaves, breaks the protocol, or is
/// closed for idling. `admitted` is false when the server already serves
/// as many connections as it may: the client is then told so at login (a
/// CancelRequest, which comes on a connection of its own, is still
/// served).
pub async fn serve(tcp: TcpStream, tls: Option<TlsAcceptor>, handlers: Arc<Handlers>, admitted: bool) -> io::Result<()> {
    let watch = PeerWatch::new(&tcp)?;
    let login = tokio::time::sleep(LOGIN_TIMEOUT);
    tokio::pin!(login);
    let negotiated = tokio::select! {
        () = &mut login => return Ok(()),
        socket = negotiate_tls(tcp, tls) => socket?,
    };
    // A direct TLS handshake without --tls-cert: nothing to say to it.
    let Some(mut socket) = negotiated else { return Ok(()) };

    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    let limits = &handlers.limits;
    let interrupt = Arc::new(Notify::new());
    let mut registration = None;
    loop {
        let logging_in = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
        );
        let next = if logging_in {
            tokio::select! {
                () = &mut login => None,
                message = socket.next() => message,
            }
        } else if let Some(idle) = limits.idle_timeout {
            match tokio::time::timeout(idle, socket.next()).await {
                Ok(message) => message,
                Err(_) => {
                    tracing::info!(client = %socket.socket_addr(), "closing a connection idle for {idle:?}");
                    return process_error(&mut socket, idle_timeout(), false).await;
                }
            }
        } else {
            socket.next().await
        };
        // The client left, or sent what pgwire cannot decode.
        let Some(Ok(message)) = next else { return Ok(()) };
        match message {
            PgWireFrontendMessage::Terminate(_) => return Ok(()),
            PgWireFrontendMessage::Startup(_) if !admitted => {
                tracing::warn!(client = %socket.socket_addr(), "connection refused: {} connections already", limits.max_connections);
                return process_error(&mut socket, too_many_connections(limits.max_connections), false).await;
            }
            _ => {}
        }
        let is_extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let timeout = statement_timeout(&socket);
        let canceled = interrupt.notified();
        let answered = AssertUnwindSafe(process_message(
            message,
            &mut socket,
            Arc::clone(&startup),
            Arc::clone(&simple),
            Arc::clone(&extended),
            Arc::clone(&copy),
            Arc::clone(&cancel),
        ))
        .catch_unwind();
        let outcome = tokio::select! {
            answered = answered => match answered {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(panic) => {
                    let message = weir_sql::error::panic_message(panic.as_ref());
                    tracing::error!(panic = %message, "answering a client's message panicked");
                    Some(internal_error(message))
                }
            },
            // Before login there is nothing to interrupt.
            () = canceled, if !logging_in => Some(Interruption::Canceled.into_error()),
            () = expire(timeout), if !logging_in => Some(Interruption::TimedOut.into_error()),
            // Whatever was being answered is dropped, and with it the query.
            () = watch.closed(), if !logging_in => return Ok(()),
        };
        if let Some(mut e) = outcome {
            errors.on_error(&socket, &mut e);
            process_error(&mut socket, e, is_extended).await?;
        }
        if registration.is_none() && matches!(socket.state(), PgWireConnectionState::ReadyForQuery) {
            // Logged in: cancellable from now on, with the server's
            // statement timeout until the client sets its own.
            registration = Some(handlers.cancels.register(&socket, Arc::clone(&interrupt)));
            if let Some(default) = limits.statement_timeout {
                socket
                    .metadata_mut()
                    .entry(STATEMENT_TIMEOUT_KEY.to_string())
                    .or_insert_with(|| default.as_millis().to_string());
            }
        }
    }
}

/// The connection's `statement_timeout`; none when unset or 0.
fn statement_timeout(client: &impl ClientInfo) -> Option<Duration> {
    let millis: u64 = client.metadata().get(STATEMENT_TIMEOUT_KEY)?.parse().ok()?;
    (millis > 0).then(|| Duration::from_millis(millis))
}

/// Resolves after `timeout`; never without one.
async fn expire(timeout: Option<Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

/// A panic's message as an `XX000` error for the message that caused it.
fn internal_error(panic: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        INTERNAL_ERROR.into(),
        format!("internal error: {panic}"),
    )))
}

/// A second handle on a client's socket, to learn that the client has gone
/// while pgwire holds the socket answering a message (as PostgreSQL's
/// `client_connection_check_interval` does, by the peer's hang-up rather
/// than by reading: what a client sends ahead stays unread).
struct PeerWatch(TcpStream);

impl PeerWatch {
    fn new(tcp: &TcpStream) -> io::Result<Self> {
        let socket = std::net::TcpStream::from(tcp.as_fd().try_clone_to_owned()?);
        socket.set_nonblocking(true)?;
        Ok(Self(TcpStream::from_std(socket)?))
    }

    /// Resolves when the client has closed the connection (or reset it).
    async fn closed(&self) {
        loop {
            match self.0.ready(Interest::READABLE).await {
                Ok(ready) if !ready.is_read_closed() => {
                    // Only data arrived: forget this readiness and wait for
                    // the next event, which a hang-up brings.
                    let _ = self.0.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
                }
                _ => return,
            }
        }
    }
}
