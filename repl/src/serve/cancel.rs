//! CancelRequest: a client (psql's Ctrl-C, psycopg's `cancel()`) opens a
//! second connection naming the first by the process id and secret key it
//! was given at login; the statement that connection is running stops with
//! `57014`.
//!
//! pgwire's own connection manager signals only while a handler computes a
//! response, not while its rows stream to the client, and a signal that
//! arrives between statements would cancel the next one. Here each
//! connection waits on a [`Notify`] only while a message is being
//! answered, from its first step to its last row, and a cancel that finds
//! no one waiting is dropped, as PostgreSQL drops it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::cancel::CancelHandler;
use datafusion_postgres::pgwire::messages::cancel::CancelRequest;
use datafusion_postgres::pgwire::messages::startup::SecretKey;
use tokio::sync::Notify;

/// A connection as a CancelRequest names it: its process id and the bytes
/// of its secret key (a 4-byte key compares the same however it was read).
type Key = (i32, Vec<u8>);

/// The connections that have logged in, by the key they were given.
#[derive(Debug, Default)]
pub struct Cancels {
    connections: Mutex<HashMap<Key, Arc<Notify>>>,
}

impl Cancels {
    /// Makes `client`'s connection cancellable through `signal` until the
    /// returned registration is dropped (when the connection ends).
    pub fn register(self: &Arc<Self>, client: &impl ClientInfo, signal: Arc<Notify>) -> Registration {
        let (pid, secret) = client.pid_and_secret_key();
        let key = (pid, secret.to_bytes().to_vec());
        self.lock().insert(key.clone(), signal);
        Registration { cancels: Arc::clone(self), key }
    }

    /// Interrupts whatever the named connection is answering, if anything.
    fn cancel(&self, pid: i32, secret: &SecretKey) {
        let signal = self.lock().get(&(pid, secret.to_bytes().to_vec())).cloned();
        if let Some(signal) = signal {
            signal.notify_waiters();
        }
    }

    /// The map; a panic elsewhere while it was held leaves it whole (each
    /// change is one insert or remove), so a poisoned lock is still used.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Notify>>> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.cancel(request.pid, &request.secret_key);
    }
}

/// A connection's entry in [`Cancels`], removed when dropped.
#[derive(Debug)]
pub struct Registration {
    cancels: Arc<Cancels>,
    key: Key,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cancels.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_reaches_only_a_waiting_connection() {
        let cancels = Arc::new(Cancels::default());
        let signal = Arc::new(Notify::new());
        let key = (7, SecretKey::I32(42).to_bytes().to_vec());
        cancels.lock().insert(key.clone(), Arc::clone(&signal));
        let registration = Registration { cancels: Arc::clone(&cancels), key };

        // Nobody waits: the cancel is dropped, not kept for the next wait.
        cancels.cancel(7, &SecretKey::I32(42));
        let waiting = signal.notified();
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        // A wrong key cancels nothing; the right one, read as bytes, does.
        cancels.cancel(7, &SecretKey::I32(41));
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        cancels.cancel(7, &SecretKey::Bytes(42i32.to_be_bytes().to_vec().into()));
        assert!(futures::poll!(waiting.as_mut()).is_ready());

        drop(registration);
        assert!(cancels.lock().is_empty());
    }
}
