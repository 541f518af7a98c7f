//! Who may connect: with a password, whoever gives it (as the one user);
//! without one, only clients on this machine. A wrong password is answered
//! only after a delay, and logged with the client's address.

use std::fmt::Debug;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::Sink;

/// `invalid_authorization_specification`
const INVALID_AUTHORIZATION: &str = "28000";

/// How long a wrong password waits for its answer, as PostgreSQL's
/// `auth_delay`: guessing takes a second a try on each connection, and
/// connections are bounded (`--max-connections`).
pub(crate) const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// The startup phase of a connection.
pub enum Startup {
    /// The client must send the password of `--user`. Cleartext, because
    /// pgwire's MD5 handler keeps one salted hash for all connections,
    /// which concurrent logins would overwrite.
    Password(Box<CleartextPasswordAuthStartupHandler<Credentials, DefaultServerParameterProvider>>),
    /// No password is set: loopback clients are let in, others refused.
    LoopbackOnly(Trusted),
}

impl Startup {
    /// With `password`, clients must log in as `user` with it; without,
    /// only loopback clients are accepted.
    pub fn new(user: String, password: Option<String>) -> Self {
        match password {
            Some(password) => Startup::Password(Box::new(CleartextPasswordAuthStartupHandler::new(
                Credentials { user, password },
                DefaultServerParameterProvider::default(),
            ))),
            None => Startup::LoopbackOnly(Trusted),
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Password(handler) => {
                let answered = handler.on_startup(client, message).await;
                if let Err(PgWireError::InvalidPassword(user)) = &answered {
                    // The name as Debug: it is the client's text, and must
                    // not forge log lines. The password is never logged.
                    tracing::warn!(client = %client.socket_addr(), user = ?user, "failed login: wrong password or unknown user");
                    tokio::time::sleep(FAILED_LOGIN_DELAY).await;
                }
                answered
            }
            Startup::LoopbackOnly(handler) => {
                let ip = client.socket_addr().ip();
                if !is_loopback(ip) {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        INVALID_AUTHORIZATION.into(),
                        format!(
                            "connection from {ip} refused: without a password (--password or WEIR_PG_PASSWORD) weir serve accepts only loopback clients"
                        ),
                    ))));
                }
                handler.on_startup(client, message).await
            }
        }
    }
}

/// Loopback, also as an IPv4 address mapped into IPv6 (a listener on `::`
/// sees IPv4 clients so).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(v6.is_loopback(), |v4| v4.is_loopback()),
    }
}

/// Lets every client in (the connection loop registers it for cancel
/// requests once it has logged in).
pub struct Trusted;

impl NoopStartupHandler for Trusted {}

/// The one user and their password.
pub struct Credentials {
    user: String,
    password: String,
}

/// Never shows the password (pgwire's AuthSource must be Debug).
impl Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

#[async_trait]
impl AuthSource for Credentials {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        match login.user() {
            Some(user) if user == self.user => Ok(Password::new(None, self.password.as_bytes().to_vec())),
            // As PostgreSQL does: an unknown user fails like a wrong password.
            other => Err(PgWireError::InvalidPassword(other.unwrap_or_default().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_in_every_form() {
        for ok in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ok.parse().unwrap()), "{ok}");
        }
        for refused in ["10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "2001:db8::1"] {
            assert!(!is_loopback(refused.parse().unwrap()), "{refused}");
        }
    }

    #[tokio::test]
    async fn only_the_configured_user_has_a_password() {
        let c = Credentials { user: "weir".into(), password: "secret".into() };
        let p = c.get_password(&LoginInfo::new(Some("weir"), None, "127.0.0.1".into())).await.unwrap();
        assert_eq!(p.password(), b"secret");
        let e = c.get_password(&LoginInfo::new(Some("postgres"), None, "127.0.0.1".into())).await.unwrap_err();
        assert!(matches!(e, PgWireError::InvalidPassword(u) if u == "postgres"));
        assert!(!format!("{c:?}").contains("secret"));
    }
}
