//! `serve`: the accept loop and each connection's bounds — hyper's header-read timeout, an idle
//! timeout, a cap on open connections — and graceful shutdown.
//!
//! Each accepted connection holds one of `max_connections` permits until it closes; while none
//! is free the loop stops accepting, so further clients wait in the listen backlog. A connection
//! is served by hyper-util's `auto::Builder` (HTTP/1.1, and HTTP/2 with prior knowledge). Its
//! bounds:
//! - hyper's `header_read_timeout` closes an HTTP/1 connection whose request head is not
//!   complete in time; hyper runs that timer from the moment the connection waits for a request,
//!   so it also bounds a keep-alive connection between requests;
//! - the idle timeout closes a connection with no request in progress (a response body still
//!   streaming counts as in progress) for that long, whatever the protocol state: a client that
//!   connects and sends nothing, or an HTTP/2 connection without streams;
//! - every request carries [`ConnectionClose`]: cancelling it closes the connection at once,
//!   which the watch endpoint uses to drop a subscriber that stopped reading;
//! - HTTP/2 header lists up to [`H2_MAX_HEADER_LIST_BYTES`] reach the router, so its JSON 431
//!   ([`crate::router::MAX_HEADER_BYTES`]) answers HTTP/2 clients as it answers HTTP/1 ones.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tower::Service;

/// How long `serve` lets in-flight requests finish after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long the accept loop waits after an accept error that is not the client's (too many
/// open files), before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Largest HTTP/2 header list (names, values and 32 bytes per field) read; larger ones get
/// h2's own 431 with no body. Twice the router's limit, which answers first with JSON.
pub const H2_MAX_HEADER_LIST_BYTES: u32 = 2 * crate::router::MAX_HEADER_BYTES as u32;

/// Bounds on connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// Time allowed from waiting for a request to having its whole head (HTTP/1).
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// Connections open at once; further clients wait to be accepted.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// The connection a request arrived on, in every request's extensions: cancelling the token
/// closes the connection.
#[derive(Clone, Debug)]
pub struct ConnectionClose(pub CancellationToken);

/// Serves `router` on `listener` with the bounds of `options` until `shutdown` is cancelled,
/// then lets in-flight requests finish for at most [`SHUTDOWN_GRACE`] and closes what is left.
/// Watch streams end when the feed is closed ([`crate::ChangeFeed::close`]) or at the end of the
/// grace period.
///
/// # Errors
/// None today: accept errors are logged and retried; the `Result` is kept for callers.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // At least one, and no more than `acquire_many` below can count.
    let max = options
        .max_connections
        .clamp(1, usize::try_from(u32::MAX).unwrap_or(usize::MAX));
    let permits = Arc::new(Semaphore::new(max));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(H2_MAX_HEADER_LIST_BYTES);
    let builder = Arc::new(builder);
    let kill = CancellationToken::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "http: accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            builder: Arc::clone(&builder),
            router: router.clone(),
            idle_timeout: options.idle_timeout,
            shutdown: shutdown.clone(),
            kill: kill.clone(),
        };
        tokio::spawn(async move {
            connection.run(stream).await;
            drop(permit);
        });
    }
    // Every connection returns its permit when it ends: all of them back means all closed.
    let drained = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(drained))
        .await
        .is_err()
    {
        tracing::warn!("http: grace period over, closing remaining connections");
    }
    kill.cancel();
    Ok(())
}

/// Errors of one client's connection, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// One accepted connection and what ends it.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    idle_timeout: Duration,
    shutdown: CancellationToken,
    kill: CancellationToken,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let close = CancellationToken::new();
        let (busy_tx, busy_rx) = watch::channel(0_usize);
        let busy_tx = Arc::new(busy_tx);
        let service = {
            let close = close.clone();
            let router = self.router;
            tower::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectionClose(close.clone()));
                let busy = Busy::enter(Arc::clone(&busy_tx));
                let response = router.clone().call(req.map(Body::new));
                async move {
                    let response = response.await?;
                    // The request is in progress until its response body is done or dropped.
                    Ok::<_, Infallible>(response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _in_progress = &busy;
                            frame
                        }))
                    }))
                }
            })
        };
        let conn = self.builder.serve_connection_with_upgrades(
            TokioIo::new(stream),
            TowerToHyperService::new(service),
        );
        tokio::pin!(conn);
        let idle = idle(busy_rx, self.idle_timeout);
        tokio::pin!(idle);
        tokio::select! {
            r = conn.as_mut() => log_end(r),
            () = &mut idle => tracing::debug!("http: closing an idle connection"),
            () = close.cancelled() => tracing::debug!("http: connection closed by the server"),
            () = self.kill.cancelled() => {}
            () = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    r = conn.as_mut() => log_end(r),
                    () = close.cancelled() => {}
                    () = self.kill.cancelled() => {}
                }
            }
        }
    }
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = result {
        tracing::debug!(%error, "http: connection ended with an error");
    }
}

/// Counts a request in progress on its connection while alive.
struct Busy(Arc<watch::Sender<usize>>);

impl Busy {
    fn enter(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Busy(count)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Completes once no request has been in progress on the connection for `timeout`.
async fn idle(mut busy: watch::Receiver<usize>, timeout: Duration) {
    loop {
        if *busy.borrow_and_update() == 0 {
            match tokio::time::timeout(timeout, busy.changed()).await {
                Err(_) => return,
                Ok(Ok(())) => {}
                Ok(Err(_)) => std::future::pending().await,
            }
        } else if busy.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
