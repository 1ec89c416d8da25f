//! The sandbox: a local Smile ID simulator, so that bulk jobs can be run and tested
//! offline, without credentials or Smile ID's hosts.
//!
//! It speaks the wire protocol of `crate::api` and nothing else of this crate: it must stay
//! an independent witness of the client code, so it never imports the engine, the store
//! or the manifest reader. Start it with [`start`] (port 0 for tests and benchmarks) or
//! from the command line with `smile-recon sandbox`.

mod authority;
mod callbacks;
mod config;
mod delay;
mod faults;
pub mod generate;
mod id_limit;
mod id_numbers;
mod jobs;
pub mod matching;
mod names;
mod registry;
mod request;
mod respond;
mod server;
mod services;
mod state;
mod stats;
mod tls;
mod window;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Faults, Outage, PreloadedJob, SandboxConfig, StatusErrors};
pub use generate::{Generated, GeneratedRow, Mix, generate};
pub use registry::{Person, Registry, RegistryError};
pub use stats::Stats;
pub use tls::{SELF_SIGNED_NAMES, TlsConfig};

use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("sandbox configuration: {0}")]
    Config(String),
}

/// A sandbox serving on [`RunningSandbox::addr`] until [`RunningSandbox::shutdown`] (or
/// until it is dropped, which asks it to stop without waiting).
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    /// The certificate served, PEM, when serving HTTPS.
    cert_pem: Option<String>,
}

/// How long shutdown waits for requests in flight before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Binds `listen` (port 0 picks a free port) and serves in a background task.
pub async fn start(
    config: SandboxConfig,
    listen: SocketAddr,
) -> Result<RunningSandbox, SandboxError> {
    let (stop, stop_rx) = watch::channel(false);
    let tls = config.tls.clone();
    let state = Arc::new(AppState::new(config, stop_rx.clone())?);
    let bind_err = |e: std::io::Error| SandboxError::Bind {
        addr: listen,
        reason: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let router = server::router(state.clone());
    let mut stopped = stop_rx;
    let shutdown = async move {
        // Ends on `true` or when the sender is dropped: either way, stop.
        let _ = stopped.wait_for(|s| *s).await;
    };
    let server = match &tls {
        None => tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!("sandbox server stopped: {e}");
            }
        }),
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls)?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!("sandbox server stopped: {e}");
                }
            })
        }
    };
    Ok(RunningSandbox {
        addr,
        state,
        stop,
        server: Some(server),
        cert_pem: tls.map(|t| t.cert_pem().to_owned()),
    })
}

impl RunningSandbox {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS): what a client's `--base-url` takes.
    pub fn base_url(&self) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The certificate served (PEM) when the sandbox speaks HTTPS: what a client trusts.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    pub fn stats(&self) -> Stats {
        self.state.stats.snapshot()
    }

    /// Stops accepting, lets requests in flight finish (within a few seconds), and stops
    /// pending async jobs and callbacks.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
