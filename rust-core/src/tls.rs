//! TLS (wss://): the server's identity, a certificate chain and its private key given
//! as PEM, and the TLS handshake of an accepted socket, done before its upgrade request
//! is read.
//!
//! rustls with one crypto provider, ring, chosen here explicitly rather than installed
//! as a process default: ring builds with a C compiler alone (aws-lc-rs, rustls's
//! default, needs cmake and builds far longer), and the library never depends on what
//! else the program put in the process. ring offers no post-quantum key exchange. ALPN offers `http/1.1`, the
//! protocol a WebSocket upgrade is spoken in.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// A server's TLS identity: its certificate chain (end-entity certificate first) and
/// the private key of that certificate, as PEM. Checked when made, so that a malformed
/// certificate or key fails at once, with a message saying which and why.
///
/// Cloning shares the PEM bytes. `Debug` shows the sizes, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    certificate_chain: Arc<[u8]>,
    private_key: Arc<[u8]>,
}

impl TlsIdentity {
    /// An identity from PEM: `certificate_chain` holds one or more `CERTIFICATE`
    /// sections, `private_key` one `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1)
    /// or `EC PRIVATE KEY` (SEC1) section that is not encrypted and matches the first
    /// certificate.
    ///
    /// Fails with `Error::InvalidArgument` naming the part that is wrong.
    pub fn from_pem(certificate_chain: &[u8], private_key: &[u8]) -> Result<TlsIdentity> {
        let identity =
            TlsIdentity { certificate_chain: certificate_chain.into(), private_key: private_key.into() };
        identity.server_config()?;
        Ok(identity)
    }

    /// The certificate chain, as PEM.
    pub fn certificate_chain_pem(&self) -> &[u8] {
        &self.certificate_chain
    }

    /// The rustls configuration serving this identity.
    fn server_config(&self) -> Result<ServerConfig> {
        let chain = certificates(&self.certificate_chain)?;
        let key = private_key(&self.private_key)?;
        // rustls marks ring's provider deprecated for its lack of post-quantum key
        // exchange; it is still supported, and the one provider that builds without
        // cmake (see docs/design.md, "TLS").
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| invalid(format!("TLS set-up failed: {err}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|err| match err {
                rustls::Error::InconsistentKeys(_) => invalid(
                    "TLS private key does not belong to the certificate chain's first certificate".into(),
                ),
                err => invalid(format!("TLS certificate chain or private key is not usable: {err}")),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificate_chain", &format_args!("{} bytes of PEM", self.certificate_chain.len()))
            .field("private_key", &format_args!("(hidden)"))
            .finish()
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| invalid(format!("TLS certificate chain is not valid PEM: {err}")))?;
    if chain.is_empty() {
        return Err(invalid("TLS certificate chain has no CERTIFICATE section".into()));
    }
    Ok(chain)
}

/// The key, with messages that describe what is wrong without quoting the key.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|err| {
        let why = match err {
            pem::Error::NoItemsFound if contains(pem, b"ENCRYPTED") => {
                "is encrypted; give it decrypted (e.g. `openssl pkey -in key.pem -out plain.pem`)"
            }
            pem::Error::NoItemsFound => "has no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section",
            pem::Error::MissingSectionEnd { .. } => "is not valid PEM: a section has no END line",
            pem::Error::IllegalSectionStart { .. } => "is not valid PEM: a BEGIN line is malformed",
            pem::Error::Base64Decode(_) => "is not valid PEM: a section is not base64",
            _ => "is not valid PEM",
        };
        invalid(format!("TLS private key {why}"))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The TLS side of a running server: the acceptor, and the count of handshakes that
/// failed.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    failed: AtomicU64,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("failed", &self.failed).finish_non_exhaustive()
    }
}

impl Tls {
    pub(crate) fn new(identity: &TlsIdentity) -> Result<Tls> {
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(identity.server_config()?)),
            failed: AtomicU64::new(0),
        })
    }

    /// The TLS handshake of an accepted socket, given up at `deadline`. None when it
    /// failed (a client speaking plain HTTP or garbage, a handshake cut short, the
    /// deadline), counted in `failed`; the socket is then dropped, which closes it.
    pub(crate) async fn accept(&self, socket: TcpStream, deadline: Instant) -> Option<TlsStream<TcpStream>> {
        match timeout_at(deadline, self.acceptor.accept(socket)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(_)) | Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// TLS handshakes that failed or timed out since the server was created.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_private_key() {
        let identity = TlsIdentity {
            certificate_chain: Arc::from(&b"chain"[..]),
            private_key: Arc::from(&b"SECRET"[..]),
        };
        let shown = format!("{identity:?}");
        assert!(!shown.contains("SECRET") && !shown.contains("83, 69"), "{shown}");
        assert!(shown.contains("5 bytes"), "{shown}");
    }

    #[test]
    fn an_encrypted_key_is_named_as_such() {
        let pem = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let message = private_key(pem).unwrap_err().to_string();
        assert!(message.contains("encrypted"), "{message}");
    }
}
