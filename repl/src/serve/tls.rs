//! TLS for pgwire clients (`--tls-cert FILE --tls-key FILE`): clients that
//! ask for it (`sslmode=require`) get it, with rustls through pgwire's
//! acceptor. A certificate or key that cannot be read stops `weir serve`
//! at startup rather than serving in the clear what was meant to be
//! encrypted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The protocol name a client negotiating TLS directly (PostgreSQL 17's
/// `sslnegotiation=direct`) must offer, which pgwire checks.
const POSTGRESQL_ALPN: &[u8] = b"postgresql";

/// Why TLS cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {source}")]
    Certificate { path: PathBuf, source: pem::Error },
    #[error("cannot read the TLS private key {path}: {source}")]
    Key { path: PathBuf, source: pem::Error },
    #[error("the TLS certificate {cert} and key {key} do not make a TLS configuration: {source}")]
    Config { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// The acceptor of the certificate chain in `cert` and the private key in
/// `key` (PEM files, as PostgreSQL's `ssl_cert_file` and `ssl_key_file`).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Certificate { path: cert.to_path_buf(), source })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate { path: cert.to_path_buf(), source: pem::Error::NoItemsFound });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key { path: key.to_path_buf(), source })?;
    let config_error = |source| TlsError::Config { cert: cert.to_path_buf(), key: key.to_path_buf(), source };
    // ring is the provider pgwire's rustls is built with.
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(config_error)?;
    config.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
