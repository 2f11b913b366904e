//! TLS for the tests: a certificate authority made for the run, a server identity it
//! signed for 127.0.0.1 and localhost, and a real TLS WebSocket client that trusts it.

use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use roost::TlsIdentity;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;

/// A WebSocket client over TLS.
pub type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// The PEM of a test CA's certificate and of a server certificate and key it signed.
pub struct TestPki {
    pub ca_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
}

/// Made once per test binary (key generation is the slow part).
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Roost test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let server = server_params.signed_by(&server_key, &ca).unwrap();
        TestPki { ca_pem: ca.pem(), chain_pem: server.pem(), key_pem: server_key.serialize_pem() }
    })
}

/// The server identity of `pki()`.
pub fn identity() -> TlsIdentity {
    let pki = pki();
    TlsIdentity::from_pem(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes()).expect("test identity")
}

/// A client configuration that trusts the test CA and offers ALPN http/1.1.
pub fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(pki().ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    #[allow(deprecated)] // ring: the tests use the provider the core uses.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS session to 127.0.0.1:`port` that verified the server against the test CA.
pub async fn tls_connect(port: u16) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    TlsConnector::from(client_config()).connect(name, tcp).await
}

/// A WebSocket client over TLS on `target` (wss://127.0.0.1:port/target).
pub async fn wss_connect(port: u16, target: &str) -> Wss {
    let tls = tls_connect(port).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN");
    let url = format!("wss://127.0.0.1:{port}{target}");
    let (ws, response) = tokio_tungstenite::client_async(url, tls).await.expect("wss upgrade");
    assert_eq!(response.status().as_u16(), 101);
    ws
}
