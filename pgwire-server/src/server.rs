//! The listener: accepts connections until told to stop.

use std::future::Future;
use std::sync::Arc;

use std::time::Duration;

use bytes::BytesMut;
use pgwire::api::ConnectionManager;
use pgwire::error::ErrorInfo;
use pgwire::messages::Message;
use pgwire::messages::response::ErrorResponse;
use pgwire::tokio::process_socket;
use quarry_coordinator::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::backend::ConnectionHandlers;
use crate::startup::{AuthMode, StartupPolicy, Users};
use crate::tls::Tls;

/// How the front end listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `HOST:PORT` to bind.
    pub listen: String,
    /// Connections served at once; more are refused with SQLSTATE 53300, as PostgreSQL's
    /// `max_connections` does. Cancel requests are always answered.
    pub max_connections: usize,
    /// TLS for clients that ask (SSLRequest); without it TLS is declined.
    pub tls: Option<Tls>,
    /// Refuse connections that did not negotiate TLS (FATAL, SQLSTATE 28000).
    pub require_tls: bool,
    pub auth: AuthMode,
}

/// PostgreSQL's default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;

/// Request codes of the startup packets that are not a startup message.
const CANCEL_REQUEST: u32 = 80_877_102;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

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
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let users = match config.auth {
        AuthMode::Trust => None,
        AuthMode::Scram => Some(Arc::new(Users::new(engine.metastore().clone())?)),
    };
    let policy = Arc::new(StartupPolicy {
        require_tls: config.require_tls,
        users,
        channel_binding: config
            .tls
            .as_ref()
            .and_then(|tls| tls.channel_binding.clone()),
    });
    let acceptor = config.tls.as_ref().map(|tls| tls.acceptor.clone());
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
                let permit = match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    // Full: a cancel request is still served (it ends at once); anything
                    // else is told why and closed.
                    Err(_) if is_cancel_request(&socket).await => None,
                    Err(_) => {
                        tokio::spawn(refuse(socket, config.max_connections));
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
                let handlers = Arc::new(ConnectionHandlers::new(
                    session,
                    Arc::clone(&connections),
                    Arc::clone(&policy),
                ));
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Err(e) = process_socket(socket, acceptor, handlers).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => return Ok(()),
        }
    }
}

/// Whether the first packet waiting on `socket` is a CancelRequest (read without
/// consuming it; a client that sends nothing within a second is not one).
async fn is_cancel_request(socket: &TcpStream) -> bool {
    let mut header = [0u8; 8];
    let peeked = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match socket.peek(&mut header).await {
                Ok(n) if n >= 8 => return true,
                Ok(0) | Err(_) => return false,
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    peeked == Ok(true)
        && u32::from_be_bytes([header[0], header[1], header[2], header[3]]) == 16
        && u32::from_be_bytes([header[4], header[5], header[6], header[7]]) == CANCEL_REQUEST
}

/// Answers a connection over the limit as PostgreSQL does: declines TLS, reads the startup
/// message, sends a FATAL error with SQLSTATE 53300 and closes.
async fn refuse(mut socket: TcpStream, max_connections: usize) {
    let exchange = async {
        let mut header = [0u8; 8];
        loop {
            socket.read_exact(&mut header).await?;
            let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let code = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            if length == 8 && (code == SSL_REQUEST || code == GSSENC_REQUEST) {
                socket.write_all(b"N").await?;
                continue;
            }
            if (8..=MAX_STARTUP_LENGTH).contains(&length) {
                let mut rest = vec![0u8; length - 8];
                socket.read_exact(&mut rest).await?;
            }
            break;
        }
        let info = ErrorInfo::new(
            "FATAL".to_string(),
            "53300".to_string(),
            format!("sorry, too many clients already (--max-connections {max_connections})"),
        );
        let mut buf = BytesMut::new();
        ErrorResponse::from(info)
            .encode(&mut buf)
            .map_err(std::io::Error::other)?;
        socket.write_all(&buf).await?;
        socket.shutdown().await
    };
    if let Err(e) = tokio::time::timeout(Duration::from_secs(10), exchange).await {
        tracing::debug!(error = %e, "a refused connection did not finish its startup");
    }
}

/// Longest startup message read from a refused client.
const MAX_STARTUP_LENGTH: usize = 10_000;
