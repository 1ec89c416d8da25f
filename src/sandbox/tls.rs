//! HTTPS for the sandbox (`sandbox --tls`): a self-signed certificate made at start, and a
//! listener that hands axum connections whose TLS handshake is already done.
//!
//! Handshakes run in tasks of their own, so one slow or silent client cannot hold up the
//! others; only finished connections reach `axum::serve`, which keeps its graceful
//! shutdown. rustls with the ring provider (the one reqwest already uses), HTTP/1.1 only.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use super::SandboxError;

/// The names the generated certificate is valid for: loopback, by address and by name.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// A handshake that has not finished in this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 64;

/// The certificate (and its key) a TLS sandbox serves. The key is never shown by `Debug`.
#[derive(Clone)]
pub struct TlsConfig {
    cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl TlsConfig {
    /// A fresh self-signed certificate for 127.0.0.1, ::1 and localhost, with a new key.
    pub fn self_signed() -> Result<Self, SandboxError> {
        let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names)
            .map_err(|e| SandboxError::Config(format!("TLS certificate: {e}")))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "smile-recon sandbox");
        let key = rcgen::KeyPair::generate()
            .map_err(|e| SandboxError::Config(format!("TLS key: {e}")))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| SandboxError::Config(format!("TLS certificate: {e}")))?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A certificate chain and private key given as PEM.
    pub fn from_pem(cert_pem: String, key_pem: String) -> Self {
        Self { cert_pem, key_pem }
    }

    /// The certificate chain, PEM: what a client adds to its trusted roots.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    fn acceptor(&self) -> Result<TlsAcceptor, SandboxError> {
        let bad =
            |what: &str, e: &dyn fmt::Display| SandboxError::Config(format!("TLS {what}: {e}"));
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", &e))?;
        if chain.is_empty() {
            return Err(SandboxError::Config(
                "TLS certificate: no certificate in the PEM".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| bad("private key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("protocol versions", &e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| bad("certificate and key", &e))?;
        // The router speaks HTTP/1.1 only (axum is built without http2).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Accepts TCP connections and yields them once their TLS handshake is done.
pub(super) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: JoinHandle<()>,
}

impl TlsListener {
    pub(super) fn new(listener: TcpListener, tls: &TlsConfig) -> Result<Self, SandboxError> {
        let local = listener
            .local_addr()
            .map_err(|e| SandboxError::Config(format!("TLS listener: {e}")))?;
        let acceptor = tls.acceptor()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor_task = tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(Self {
            local,
            ready,
            acceptor_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // axum drops the listener when it shuts down: stop accepting with it.
        self.acceptor_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, as axum does.
                tracing::debug!("sandbox accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                // A client that does not trust the certificate ends here: its business.
                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                Err(_) => tracing::debug!("TLS handshake with {peer}: timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop never ends on its own; if it did, accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_parses_and_hides_its_key() {
        let tls = TlsConfig::self_signed().unwrap();
        assert!(tls.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let chain: Vec<_> = CertificateDer::pem_slice_iter(tls.cert_pem().as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(chain.len(), 1);
        assert!(tls.acceptor().is_ok());
        let debug = format!("{tls:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("PRIVATE KEY"));
    }

    #[test]
    fn a_key_that_does_not_match_is_refused() {
        let a = TlsConfig::self_signed().unwrap();
        let b = TlsConfig::self_signed().unwrap();
        let mixed = TlsConfig::from_pem(a.cert_pem.clone(), b.key_pem.clone());
        assert!(mixed.acceptor().is_err());
        let empty = TlsConfig::from_pem(String::new(), a.key_pem.clone());
        assert!(empty.acceptor().is_err());
    }
}
