//! Serving the API on a TCP listener: HTTP/1.1 connections under a header-read timeout, an
//! idle keep-alive timeout and a cap on open connections, with graceful shutdown. Knows sockets
//! and HTTP framing only; every request goes to the router.
//!
//! Over the cap, the connection idle the longest (waiting for a request, or for the rest of a
//! request's header) is closed to make room, and the new one is served. Refusing the newcomer
//! instead would let a few hundred silent sockets keep every real client (and a load balancer's
//! `/healthz`) out until they time out; holding new ones in the listen backlog would do the
//! same, slower. Only when every open connection is in the middle of a request is a new one
//! closed at once.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

/// File descriptors kept for everything but client connections: database connections, SMPP
/// sessions, webhook requests, log and database files.
const RESERVED_DESCRIPTORS: u64 = 256;

/// How often, at most, a refused connection is logged (a flood would otherwise flood the log).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Limits on client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's whole header: from the connection's start for its
    /// first request, from the first byte of each later one. `None`: no limit.
    pub header_read_timeout: Option<Duration>,
    /// How long a kept-alive connection may wait for its next request. `None`: no limit.
    pub keep_alive_timeout: Option<Duration>,
    /// Most connections open at once (at least 1).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Some(Duration::from_secs(10)),
            keep_alive_timeout: Some(Duration::from_secs(75)),
            max_connections: 1024,
        }
    }
}

impl ConnectionLimits {
    /// The limits with the connection cap lowered, if need be, so that connections cannot use
    /// up `open_files` (the process's file descriptor limit) and starve the database.
    pub fn within_open_file_limit(mut self, open_files: Option<u64>) -> ConnectionLimits {
        if let Some(open_files) = open_files {
            let room = open_files
                .saturating_sub(RESERVED_DESCRIPTORS)
                .max(open_files / 2)
                .max(1);
            self.max_connections = self
                .max_connections
                .min(usize::try_from(room).unwrap_or(usize::MAX));
        }
        self
    }
}

/// Raises the soft limit on open files to the hard limit (a default soft limit of 1,024 is
/// easily reached by clients, and hurts the database first). Returns the soft limit in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%err, "could not raise the open file limit to its hard limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<u64> {
    None
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, closes idle
/// connections, lets requests in progress finish, and returns once every connection closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::new(limits));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    // Out of file descriptors, typically: wait for some to be freed.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(connection) = registry.admit() else {
            registry.log_refusal();
            drop(stream);
            continue;
        };
        tokio::spawn(serve_connection(
            stream,
            remote,
            router.clone(),
            connection,
            registry.clone(),
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    registry.all_closed().await;
    Ok(())
}

fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
    mut stopping: watch::Receiver<bool>,
) {
    let _registered = Registered {
        registry,
        id: connection.id,
    };
    let io = TokioIo::new(Watched {
        stream,
        connection: connection.clone(),
    });
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = InFlight::start(connection.clone());
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            let response = router.clone().oneshot(request);
            async move {
                let response = response.await?;
                // The request counts as in progress until its response body is sent (or
                // dropped), so a long download is never cut as "idle".
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    }))
                }))
            }
        })
    };
    let limits = connection.limits;
    // The header-read timeout is ours (see `Phase`): hyper's restarts on every kept-alive
    // request, which would make it the idle timeout too.
    let served = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(served);
    let mut closing = false;
    loop {
        let deadline = connection.phase().deadline(&limits);
        tokio::select! {
            result = served.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%err, %remote, "connection ended with an error");
                }
                return;
            }
            _ = sleep_until(deadline) => {
                // Nothing is lost: a timeout only runs while no request is being answered.
                if connection.phase().deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    return;
                }
            }
            _ = connection.wake.notified() => {
                if connection.evicted.load(Ordering::Relaxed) && !closing {
                    if connection.phase().is_busy() {
                        served.as_mut().graceful_shutdown();
                        closing = true;
                    } else {
                        return;
                    }
                }
            }
            _ = stopping.wait_for(|stop| *stop), if !closing => {
                if connection.phase().is_busy() {
                    // Answer what is in progress, then close.
                    served.as_mut().graceful_shutdown();
                    closing = true;
                } else {
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Where a connection stands, which decides its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's first byte, since `since`; `first`: no request came yet.
    Waiting { since: Instant, first: bool },
    /// Part of a request's header arrived; its header-read timeout runs from `since`.
    ReadingHeader { since: Instant },
    /// This many requests are being answered.
    Busy(usize),
}

impl Phase {
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        match *self {
            Phase::Waiting { since, first: true } | Phase::ReadingHeader { since } => {
                limits.header_read_timeout.map(|timeout| since + timeout)
            }
            Phase::Waiting {
                since,
                first: false,
            } => limits.keep_alive_timeout.map(|timeout| since + timeout),
            Phase::Busy(_) => None,
        }
    }

    fn is_busy(&self) -> bool {
        matches!(self, Phase::Busy(_))
    }

    /// Since when the connection has been idle (`None` while busy).
    fn idle_since(&self) -> Option<Instant> {
        match *self {
            Phase::Waiting { since, .. } | Phase::ReadingHeader { since } => Some(since),
            Phase::Busy(_) => None,
        }
    }
}

/// One open connection, as its task, its I/O, its requests and the registry see it.
struct Connection {
    id: u64,
    limits: ConnectionLimits,
    phase: Mutex<Phase>,
    /// Closed to make room for a newer connection.
    evicted: AtomicBool,
    /// Wakes the connection's task to look at its phase and `evicted` again.
    wake: Notify,
}

impl Connection {
    fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    fn set_phase(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = lock(&self.phase);
        let new = change(*phase);
        if new != *phase {
            *phase = new;
            drop(phase);
            self.wake.notify_one();
        }
    }

    fn bytes_arrived(&self) {
        self.set_phase(|phase| match phase {
            // The first request's header has had its time since the connection opened.
            Phase::Waiting { since, first: true } => Phase::ReadingHeader { since },
            Phase::Waiting { first: false, .. } => Phase::ReadingHeader {
                since: Instant::now(),
            },
            other => other,
        });
    }
}

/// Marks its connection busy from the moment a request reaches the router until the response
/// body is done.
struct InFlight(Arc<Connection>);

impl InFlight {
    fn start(connection: Arc<Connection>) -> InFlight {
        connection.set_phase(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        InFlight(connection)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set_phase(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Waiting {
                since: Instant::now(),
                first: false,
            },
        });
    }
}

/// The socket, noticing when the bytes of a new request start to arrive.
struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The open connections.
struct Registry {
    limits: ConnectionLimits,
    table: Mutex<Table>,
    /// Signalled when the last connection closes.
    emptied: Notify,
    last_refusal_log: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Connection>>,
    /// Connections told to close that have not closed yet; they no longer count against the cap.
    evicted: usize,
}

impl Registry {
    fn new(limits: ConnectionLimits) -> Registry {
        Registry {
            limits,
            table: Mutex::new(Table::default()),
            emptied: Notify::new(),
            last_refusal_log: Mutex::new(None),
        }
    }

    /// Registers a new connection, closing the one idle the longest when at the cap; `None`
    /// when every open connection is answering a request.
    fn admit(&self) -> Option<Arc<Connection>> {
        let mut table = lock(&self.table);
        if table.open.len() - table.evicted >= self.limits.max_connections.max(1) {
            let oldest_idle = table
                .open
                .values()
                .filter(|c| !c.evicted.load(Ordering::Relaxed))
                .filter_map(|c| c.phase().idle_since().map(|since| (since, c.id, c)))
                .min_by_key(|(since, id, _)| (*since, *id))
                .map(|(_, _, c)| c.clone())?;
            oldest_idle.evicted.store(true, Ordering::Relaxed);
            oldest_idle.wake.notify_one();
            table.evicted += 1;
        }
        table.next_id += 1;
        let connection = Arc::new(Connection {
            id: table.next_id,
            limits: self.limits,
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                first: true,
            }),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        });
        table.open.insert(connection.id, connection.clone());
        Some(connection)
    }

    fn remove(&self, id: u64) {
        let mut table = lock(&self.table);
        if let Some(connection) = table.open.remove(&id) {
            if connection.evicted.load(Ordering::Relaxed) {
                table.evicted -= 1;
            }
        }
        if table.open.is_empty() {
            self.emptied.notify_one();
        }
    }

    async fn all_closed(&self) {
        while !lock(&self.table).open.is_empty() {
            self.emptied.notified().await;
        }
    }

    fn log_refusal(&self) {
        let mut last = lock(&self.last_refusal_log);
        if last.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(
                max_connections = self.limits.max_connections,
                "refusing connections: every connection is busy (max_connections)"
            );
        }
    }
}

/// Takes its connection out of the registry when the connection's task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_file_descriptors_for_the_rest() {
        let limits = ConnectionLimits {
            max_connections: 4096,
            ..ConnectionLimits::default()
        };
        assert_eq!(
            limits.within_open_file_limit(Some(1024)).max_connections,
            768
        );
        assert_eq!(
            limits.within_open_file_limit(Some(300)).max_connections,
            150
        );
        assert_eq!(
            limits
                .within_open_file_limit(Some(1_048_576))
                .max_connections,
            4096
        );
        assert_eq!(limits.within_open_file_limit(None).max_connections, 4096);
    }

    #[cfg(unix)]
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert_eq!(raise_open_file_limit(), hard);
    }

    #[test]
    fn timeouts_follow_the_phase() {
        let limits = ConnectionLimits {
            header_read_timeout: Some(Duration::from_secs(2)),
            keep_alive_timeout: Some(Duration::from_secs(60)),
            max_connections: 8,
        };
        let at = Instant::now();
        let first = Phase::Waiting {
            since: at,
            first: true,
        };
        assert_eq!(first.deadline(&limits), Some(at + Duration::from_secs(2)));
        let kept_alive = Phase::Waiting {
            since: at,
            first: false,
        };
        assert_eq!(
            kept_alive.deadline(&limits),
            Some(at + Duration::from_secs(60))
        );
        assert_eq!(
            Phase::ReadingHeader { since: at }.deadline(&limits),
            Some(at + Duration::from_secs(2))
        );
        assert_eq!(Phase::Busy(1).deadline(&limits), None);
        let unlimited = ConnectionLimits {
            header_read_timeout: None,
            keep_alive_timeout: None,
            max_connections: 8,
        };
        assert_eq!(first.deadline(&unlimited), None);
        assert_eq!(kept_alive.deadline(&unlimited), None);
    }
}
