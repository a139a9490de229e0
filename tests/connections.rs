//! Client connections on a real socket, served as `warbler serve` serves them: clients that
//! never finish a header are cut off, kept-alive connections idle too long are closed, and a
//! pile of idle sockets cannot keep real clients out.

mod common;

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use warbler::api::server::ConnectionLimits;

fn limits(header_read_ms: u64, keep_alive_ms: u64, max_connections: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Some(Duration::from_millis(header_read_ms)),
        keep_alive_timeout: Some(Duration::from_millis(keep_alive_ms)),
        max_connections,
    }
}

/// Waits up to `within` for the server to close the connection; how long it took, if it did.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// `true` when the server keeps the connection open (and silent) for `period`.
async fn stays_open(stream: &mut TcpStream, period: Duration) -> bool {
    let mut buf = [0u8; 1];
    timeout(period, stream.read(&mut buf)).await.is_err()
}

/// Sends `GET /healthz` and reads the whole response; returns its status line.
async fn healthz(stream: &mut TcpStream, keep_alive: bool) -> String {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    stream
        .write_all(
            format!(
                "GET /healthz HTTP/1.1\r\nHost: warbler.test\r\nConnection: {connection}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    read_response(stream).await
}

/// Reads one response (its header and a `Content-Length` body); returns its status line.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    return head.lines().next().unwrap_or_default().to_string();
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed mid-response: {received:?}");
            received.extend_from_slice(&buf[..n]);
        }
    };
    timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

#[tokio::test]
async fn a_client_that_never_finishes_its_header_is_cut_off_after_the_header_read_timeout() {
    let server = common::spawn().await;
    let listening = server.listen(limits(400, 30_000, 64)).await;

    let mut silent = TcpStream::connect(listening.addr).await.unwrap();
    let mut trickling = TcpStream::connect(listening.addr).await.unwrap();
    let opened = Instant::now();
    trickling
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: warbler.test\r\n")
        .await
        .unwrap();
    // One more header line every 100 ms: progress does not buy more time.
    let trickle = async {
        let mut buf = [0u8; 64];
        for i in 0.. {
            let line = format!("X-Slow-{i}: 1\r\n");
            if trickling.write_all(line.as_bytes()).await.is_err() {
                return opened.elapsed();
            }
            if let Ok(Ok(0) | Err(_)) =
                timeout(Duration::from_millis(100), trickling.read(&mut buf)).await
            {
                return opened.elapsed();
            }
            assert!(opened.elapsed() < Duration::from_secs(5), "never cut off");
        }
        unreachable!()
    };
    let (silent_closed, trickling_closed) =
        tokio::join!(closed_within(&mut silent, Duration::from_secs(5)), trickle);
    let silent_closed = silent_closed.expect("a silent connection is closed");
    assert!(
        silent_closed >= Duration::from_millis(350),
        "{silent_closed:?}"
    );
    assert!(
        trickling_closed >= Duration::from_millis(350),
        "{trickling_closed:?}"
    );

    // The server itself is fine.
    let mut client = TcpStream::connect(listening.addr).await.unwrap();
    assert_eq!(healthz(&mut client, false).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let server = common::spawn().await;

    // A short idle timeout closes a kept-alive connection long before the header timeout.
    let listening = server.listen(limits(10_000, 400, 64)).await;
    let mut client = TcpStream::connect(listening.addr).await.unwrap();
    assert_eq!(healthz(&mut client, true).await, "HTTP/1.1 200 OK");
    assert_eq!(healthz(&mut client, true).await, "HTTP/1.1 200 OK");
    let idle = closed_within(&mut client, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(idle >= Duration::from_millis(350), "{idle:?}");
    drop(listening);

    // A short header timeout does not close a kept-alive connection between requests.
    let listening = server.listen(limits(300, 10_000, 64)).await;
    let mut client = TcpStream::connect(listening.addr).await.unwrap();
    assert_eq!(healthz(&mut client, true).await, "HTTP/1.1 200 OK");
    assert!(stays_open(&mut client, Duration::from_millis(900)).await);
    assert_eq!(healthz(&mut client, true).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn idle_sockets_over_the_cap_make_way_and_health_checks_are_answered() {
    let server = common::spawn().await;
    const CAP: usize = 8;
    const EXTRA: usize = 4;
    // Timeouts far longer than the test: only the cap can close anything.
    let listening = server.listen(limits(60_000, 60_000, CAP)).await;
    let mut idle = Vec::new();
    for _ in 0..CAP + EXTRA {
        idle.push(TcpStream::connect(listening.addr).await.unwrap());
    }

    let mut checker = TcpStream::connect(listening.addr).await.unwrap();
    assert_eq!(healthz(&mut checker, false).await, "HTTP/1.1 200 OK");

    // The longest idle made room, oldest first: EXTRA for the idle sockets over the cap,
    // one for the health check. The rest are still open: the cap was never exceeded.
    let evicted = EXTRA + 1;
    for (i, socket) in idle.iter_mut().enumerate().take(evicted) {
        assert!(
            closed_within(socket, Duration::from_secs(5))
                .await
                .is_some(),
            "idle socket {i} is still open"
        );
    }
    for (i, socket) in idle.iter_mut().enumerate().skip(evicted) {
        assert!(
            stays_open(socket, Duration::from_millis(200)).await,
            "idle socket {i} was closed"
        );
    }
}

/// Starts `POST /Accounts` and sends all but its body: the request is then in progress.
async fn request_in_progress(server: &common::TestServer, addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (sid, token) = server.main_creds();
    let head = format!(
        "POST /2010-04-01/Accounts.json HTTP/1.1\r\nHost: warbler.test\r\n\
         Authorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n",
        common::basic(sid, token),
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

const BODY: &str = "FriendlyName=busy";

#[tokio::test]
async fn when_every_connection_is_answering_a_request_a_new_one_is_closed() {
    let server = common::spawn().await;
    let listening = server.listen(limits(60_000, 60_000, 2)).await;
    let mut busy = vec![
        request_in_progress(&server, listening.addr).await,
        request_in_progress(&server, listening.addr).await,
    ];
    // Let the server see both requests before the third connection arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = TcpStream::connect(listening.addr).await.unwrap();
    assert!(closed_within(&mut refused, Duration::from_secs(5))
        .await
        .is_some());
    for stream in &mut busy {
        stream.write_all(BODY.as_bytes()).await.unwrap();
        assert_eq!(read_response(stream).await, "HTTP/1.1 201 Created");
    }
}

#[tokio::test]
async fn shutting_down_closes_idle_connections_and_finishes_requests_in_progress() {
    let server = common::spawn().await;
    let mut listening = server.listen(limits(60_000, 60_000, 16)).await;
    let mut silent = TcpStream::connect(listening.addr).await.unwrap();
    let mut kept_alive = TcpStream::connect(listening.addr).await.unwrap();
    assert_eq!(healthz(&mut kept_alive, true).await, "HTTP/1.1 200 OK");
    let mut in_progress = request_in_progress(&server, listening.addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let served = listening.shut_down();
    for idle in [&mut silent, &mut kept_alive] {
        assert!(closed_within(idle, Duration::from_secs(5)).await.is_some());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!served.is_finished(), "returned with a request in progress");
    assert!(
        TcpStream::connect(listening.addr).await.is_err(),
        "still accepting"
    );

    in_progress.write_all(BODY.as_bytes()).await.unwrap();
    assert_eq!(
        read_response(&mut in_progress).await,
        "HTTP/1.1 201 Created"
    );
    assert!(closed_within(&mut in_progress, Duration::from_secs(5))
        .await
        .is_some());
    timeout(Duration::from_secs(5), served)
        .await
        .expect("the server returns once the last request is answered")
        .unwrap()
        .unwrap();
}
