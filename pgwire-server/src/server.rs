//! The listener: accepts connections until told to stop.

use std::future::Future;
use std::sync::Arc;

use pgwire::api::ConnectionManager;
use pgwire::tokio::process_socket;
use quarry_coordinator::Engine;
use tokio::net::TcpListener;

use crate::backend::ConnectionHandlers;

/// How the front end listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `HOST:PORT` to bind.
    pub listen: String,
}

/// Binds and serves until `shutdown` completes; then stops accepting. Connections being
/// served finish on their own. Returns the bound address once listening via `on_bound`.
pub async fn serve(
    engine: Engine,
    config: ServerConfig,
    on_bound: impl FnOnce(std::net::SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(&config.listen).await?;
    on_bound(listener.local_addr()?);
    // Which connection a cancel request (pid, secret key) is for.
    let connections = Arc::new(ConnectionManager::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let session = match engine.new_session() {
                    Ok(session) => session,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "cannot open a session; connection closed");
                        continue;
                    }
                };
                let handlers = Arc::new(ConnectionHandlers::new(session, Arc::clone(&connections)));
                tokio::spawn(async move {
                    if let Err(e) = process_socket(socket, None, handlers).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => return Ok(()),
        }
    }
}
