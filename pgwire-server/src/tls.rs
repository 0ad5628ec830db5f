//! TLS for the front end: a certificate chain and key loaded once, at startup.

use std::path::Path;
use std::sync::Arc;

use pgwire::api::auth::sasl::scram::ScramServerAuth;
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What a client negotiating TLS gets: the acceptor, and the certificate (PEM) that
/// SCRAM-SHA-256-PLUS binds to when its signature algorithm allows it.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) channel_binding: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("channel_binding", &self.channel_binding.is_some())
            .finish_non_exhaustive()
    }
}

/// ALPN name of PostgreSQL 17's direct TLS negotiation (`sslnegotiation=direct`).
const POSTGRESQL_ALPN: &[u8] = b"postgresql";

impl Tls {
    /// Loads a PEM certificate chain and its PEM private key. Every failure names the
    /// file: a server asked for TLS never starts without it.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let cert_pem = std::fs::read(cert)
            .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                format!(
                    "TLS certificate {}: not a PEM certificate: {e}",
                    cert.display()
                )
            })?;
        if chain.is_empty() {
            return Err(format!(
                "TLS certificate {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                cert.display()
            ));
        }
        let key_pem = std::fs::read(key)
            .map_err(|e| format!("cannot read TLS key {}: {e}", key.display()))?;
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("TLS key {}: not a PEM private key: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|e| {
                format!(
                    "TLS certificate {} and key {} do not work together: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        config.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
        // Channel binding hashes the certificate with its signature's digest; a
        // certificate pgwire cannot hash still serves TLS, with SCRAM-SHA-256 only.
        let channel_binding = match ScramServerAuth::new().configure_certificate(&cert_pem) {
            Ok(()) => Some(Arc::new(cert_pem)),
            Err(e) => {
                tracing::warn!(
                    certificate = %cert.display(),
                    error = %e,
                    "SCRAM channel binding (SCRAM-SHA-256-PLUS) is off for this certificate"
                );
                None
            }
        };
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            channel_binding,
        })
    }
}
