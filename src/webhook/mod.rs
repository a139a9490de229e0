//! Outgoing webhooks: the HTTP client that sends them (signed with `X-Twilio-Signature`,
//! with timeouts, refusing private addresses unless allowed). What to send and when (the
//! durable outbox, retries, alerts) is decided in `engine::webhooks`.

mod guard;
pub mod signature;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::{header, Method};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::time::Duration;

/// The `User-Agent` of Twilio's webhook requests.
const USER_AGENT: &str = "TwilioProxy/1.1";

/// One webhook request.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    /// `GET` or `POST`.
    pub method: String,
    pub params: Vec<(String, String)>,
    /// A JSON body instead of `params` (always POSTed, signed with `bodySHA256`).
    pub json_body: Option<String>,
    /// The auth token of the account the webhook is about: the signing key.
    pub auth_token: String,
    /// Sent as `I-Twilio-Idempotency-Token`: the same on every retry of one delivery.
    pub idempotency_token: String,
}

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct Response {
    pub url: String,
    /// The `X-Twilio-Signature` sent, if the request got that far.
    pub signature: Option<String>,
    pub result: std::result::Result<Answer, String>,
}

impl Response {
    /// The headers Twilio's webhook requests carry besides the HTTP basics, as sent with
    /// `request` (for the alert that records a failed one).
    pub fn request_headers(&self, request: &Request) -> Vec<(String, String)> {
        let Some(signature) = &self.signature else {
            return Vec::new();
        };
        vec![
            ("X-Twilio-Signature".to_string(), signature.clone()),
            (
                "I-Twilio-Idempotency-Token".to_string(),
                request.idempotency_token.clone(),
            ),
            ("Accept".to_string(), ACCEPT.to_string()),
            ("Cache-Control".to_string(), CACHE_CONTROL.to_string()),
        ]
    }
}

/// An HTTP answer (any status).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The answer's headers as text pairs (a value that is not text reads as empty).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect()
    }
}

/// The `Accept` and `Cache-Control` values of Twilio's webhook requests.
const ACCEPT: &str = "*/*";
const CACHE_CONTROL: &str = "max-age=259200";

/// Largest response body read (a TwiML answer is small).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Allow loopback and private-network targets (development, or webhooks on the
    /// operator's own network).
    pub allow_private_targets: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            allow_private_targets: false,
        }
    }
}

/// Requests in flight to one receiver (scheme, host and port) at most, and keep-alive
/// connections kept open to it. Equal, so a busy round reuses its connections: without a
/// bound, a round of callbacks opens one connection per request and closes most of them after
/// (a TCP handshake and teardown on both sides for each callback).
const CONNECTIONS_PER_RECEIVER: usize = 32;
/// Receivers whose bound is remembered; past it the map starts over (see `receiver_slots`).
const RECEIVERS_REMEMBERED: usize = 10_000;

/// The connector: plain TCP through `guard::Resolver`, TLS where the URL says `https`.
type Connector = hyper_rustls::HttpsConnector<HttpConnector<guard::Resolver>>;

#[derive(Clone)]
pub struct WebhookClient {
    http: Client<Connector, Full<Bytes>>,
    /// For the whole exchange: connecting, sending, and reading the answer.
    timeout: Duration,
    allow_private_targets: bool,
    receivers:
        std::sync::Arc<std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>>,
    /// POST targets already checked, by URL: callbacks go to few URLs, each many times.
    targets: std::sync::Arc<std::sync::Mutex<HashMap<String, std::sync::Arc<Target>>>>,
}

/// A checked URL, ready to be sent to.
struct Target {
    uri: http::Uri,
    /// HTTP basic credentials from the URL's user and password, if it has any.
    authorization: Option<http::HeaderValue>,
    /// The receiver's request slots (see `CONNECTIONS_PER_RECEIVER`).
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Installs rustls' `ring` crypto provider for the process (once; later calls do nothing).
/// Every TLS client of the process (webhooks, SMPP over TLS) needs it first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl WebhookClient {
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<WebhookClient> {
        use rustls_platform_verifier::ConfigVerifierExt;
        install_crypto_provider();
        let mut tcp = HttpConnector::new_with_resolver(guard::Resolver {
            public_only: !settings.allow_private_targets,
        });
        // The scheme is checked by `check_target`; TLS wraps this connector for https.
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(settings.connect_timeout));
        tcp.set_nodelay(true);
        let tls = rustls::ClientConfig::with_platform_verifier()?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        // No proxy: a proxy would resolve the target itself, past the private-address guard.
        // No redirects: a callback's answer is its status.
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(CONNECTIONS_PER_RECEIVER)
            .build(connector);
        Ok(WebhookClient {
            http,
            timeout: settings.timeout,
            allow_private_targets: settings.allow_private_targets,
            receivers: std::sync::Arc::default(),
            targets: std::sync::Arc::default(),
        })
    }

    /// The request slots of the receiver at `url` (see `CONNECTIONS_PER_RECEIVER`).
    fn receiver_slots(&self, url: &url::Url) -> std::sync::Arc<tokio::sync::Semaphore> {
        let origin = url.origin().ascii_serialization();
        let mut receivers = self
            .receivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if receivers.len() >= RECEIVERS_REMEMBERED && !receivers.contains_key(&origin) {
            // Slots in use stay valid (their holders own the semaphore); only the bound of
            // the receivers forgotten is briefly doubled. The targets remembered hold their
            // receivers' old slots, so they go too.
            receivers.clear();
            self.targets
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clear();
        }
        receivers
            .entry(origin)
            .or_insert_with(|| {
                std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_PER_RECEIVER))
            })
            .clone()
    }

    /// Sends one webhook. Never fails: every problem is described in the `Response`.
    pub async fn send(&self, request: &Request) -> Response {
        let started = std::time::Instant::now();
        let response = self.send_once(request).await;
        metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS).increment(1);
        metrics::histogram!(crate::telemetry::WEBHOOK_DURATION)
            .record(started.elapsed().as_secs_f64());
        if let Some(cause) = failure_cause(&response) {
            metrics::counter!(crate::telemetry::WEBHOOK_FAILURES, "cause" => cause).increment(1);
        }
        response
    }

    async fn send_once(&self, request: &Request) -> Response {
        let mut url = request.url.clone();
        let borrowed: Vec<(&str, &str)> = request
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let get = request.json_body.is_none() && request.method.eq_ignore_ascii_case("GET");
        let signature = if let Some(body) = &request.json_body {
            let (signed_url, signature) = signature::sign_json(&request.auth_token, &url, body);
            url = signed_url;
            signature
        } else if get {
            // GET webhooks carry their parameters in the URL, which is what gets signed.
            let mut parsed = match url::Url::parse(&url) {
                Ok(parsed) => parsed,
                Err(err) => return failed(url, None, format!("invalid URL: {err}")),
            };
            parsed.query_pairs_mut().extend_pairs(borrowed.iter());
            url = parsed.to_string();
            signature::sign_form(&request.auth_token, &url, &[])
        } else {
            signature::sign_form(&request.auth_token, &url, &borrowed)
        };
        // A GET's URL is new for every request: only POST targets are remembered.
        let target = match self.target(&url, !get) {
            Ok(target) => target,
            Err(reason) => return failed(url, Some(signature), reason),
        };
        let Ok(_slot) = target.slots.acquire().await else {
            return failed(url, Some(signature), "webhook client closed".into());
        };
        let (method, content_type, body) = if let Some(body) = &request.json_body {
            (
                Method::POST,
                Some("application/json; charset=utf-8"),
                Bytes::from(body.clone()),
            )
        } else if get {
            (Method::GET, None, Bytes::new())
        } else {
            let body = form_urlencoded::Serializer::new(String::with_capacity(512))
                .extend_pairs(borrowed.iter())
                .finish();
            (
                Method::POST,
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                Bytes::from(body),
            )
        };
        let http_request = match build_request(
            method,
            &target,
            content_type,
            &signature,
            &request.idempotency_token,
            body,
        ) {
            Ok(http_request) => http_request,
            Err(reason) => return failed(url, Some(signature), reason),
        };
        let exchange = async {
            let response = self
                .http
                .request(http_request)
                .await
                .map_err(|err| describe(&err))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|err| {
                    if err.is::<LengthLimitError>() {
                        "response body too large".to_string()
                    } else {
                        format!("request failed: {err}")
                    }
                })?
                .to_bytes();
            Ok::<_, String>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(reason)) => return failed(url, Some(signature), reason),
            Err(_) => {
                let reason = format!("timeout: no answer within {:?}", self.timeout);
                return failed(url, Some(signature), reason);
            }
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Response {
            url,
            signature: Some(signature),
            result: Ok(Answer {
                status: parts.status.as_u16(),
                content_type,
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }),
        }
    }

    /// The checked target of `url`, from those remembered if `remember`.
    fn target(
        &self,
        url: &str,
        remember: bool,
    ) -> std::result::Result<std::sync::Arc<Target>, String> {
        let lock = || {
            self.targets
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if remember {
            if let Some(target) = lock().get(url) {
                return Ok(target.clone());
            }
        }
        let mut parsed = self.check_target(url)?;
        let slots = self.receiver_slots(&parsed);
        let authorization = take_credentials(&mut parsed)?;
        let uri: http::Uri = parsed
            .as_str()
            .parse()
            .map_err(|err| format!("invalid URL: {err}"))?;
        let target = std::sync::Arc::new(Target {
            uri,
            authorization,
            slots,
        });
        if remember {
            let mut targets = lock();
            if targets.len() >= RECEIVERS_REMEMBERED {
                targets.clear();
            }
            targets.insert(url.to_string(), target.clone());
        }
        Ok(target)
    }

    /// Only http(s) URLs, and no private IP literal unless allowed (host names are checked
    /// by the resolver).
    /// Returns the parsed URL.
    fn check_target(&self, url: &str) -> std::result::Result<url::Url, String> {
        let parsed = url::Url::parse(url).map_err(|err| format!("invalid URL: {err}"))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(format!("unsupported scheme {}", parsed.scheme()));
        }
        if self.allow_private_targets {
            return Ok(parsed);
        }
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        match ip {
            Some(ip) if !guard::is_public(ip) => Err(format!(
                "{ip} is a private address (allow_private_targets is off)"
            )),
            _ => Ok(parsed),
        }
    }
}

fn failed(url: String, signature: Option<String>, reason: String) -> Response {
    Response {
        url,
        signature,
        result: Err(reason),
    }
}

/// Why a webhook failed, as a metric label (a few fixed values); `None` for a 2xx/3xx answer.
fn failure_cause(response: &Response) -> Option<&'static str> {
    match &response.result {
        Ok(answer) if answer.status < 400 => None,
        Ok(answer) if answer.status < 500 => Some("http_4xx"),
        Ok(_) => Some("http_5xx"),
        Err(reason) if reason.starts_with("timeout") => Some("timeout"),
        Err(reason) if reason.starts_with("connection failed") => Some("connect"),
        Err(reason) if reason.starts_with("request failed") => Some("request"),
        // Refused before any request: bad URL, scheme or a private address.
        Err(_) => Some("refused"),
    }
}

/// An error of the client, with the cause's chain: `timeout` (connecting took longer than
/// the connect timeout), `connection failed` or `request failed` first (see `failure_cause`).
fn describe(err: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut causes = Vec::new();
    let mut timed_out = false;
    let mut source = err.source();
    while let Some(cause) = source {
        timed_out |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        causes.push(cause.to_string());
        source = cause.source();
    }
    let kind = if timed_out {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    if causes.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

/// Takes the URL's credentials, if it has any, out of it: they are sent as HTTP basic
/// authentication and left out of the request line.
fn take_credentials(
    target: &mut url::Url,
) -> std::result::Result<Option<http::HeaderValue>, String> {
    if target.username().is_empty() && target.password().is_none() {
        return Ok(None);
    }
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(target.username());
    let password = decode(target.password().unwrap_or(""));
    let credentials = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let _ = target.set_username("");
    let _ = target.set_password(None);
    http::HeaderValue::from_str(&credentials)
        .map(Some)
        .map_err(|err| format!("invalid request: {err}"))
}

/// The HTTP request to `target`, signed.
fn build_request(
    method: Method,
    target: &Target,
    content_type: Option<&'static str>,
    signature: &str,
    idempotency_token: &str,
    body: Bytes,
) -> std::result::Result<http::Request<Full<Bytes>>, String> {
    let invalid = |err: http::header::InvalidHeaderValue| format!("invalid request: {err}");
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = target.uri.clone();
    let headers = request.headers_mut();
    headers.reserve(8);
    headers.insert(
        header::USER_AGENT,
        header::HeaderValue::from_static(USER_AGENT),
    );
    if let Some(content_type) = content_type {
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
    }
    if let Some(credentials) = &target.authorization {
        headers.insert(header::AUTHORIZATION, credentials.clone());
    }
    headers.insert(
        header::HeaderName::from_static("x-twilio-signature"),
        header::HeaderValue::from_str(signature).map_err(invalid)?,
    );
    headers.insert(
        header::HeaderName::from_static("i-twilio-idempotency-token"),
        header::HeaderValue::from_str(idempotency_token).map_err(invalid)?,
    );
    headers.insert(header::ACCEPT, header::HeaderValue::from_static(ACCEPT));
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A receiver that answers after 20 ms; counts the connections opened and the most
    /// requests it had in hand at once.
    async fn slow_receiver() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/status", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let (busy, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (opened, peak) = (connections.clone(), most.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                opened.fetch_add(1, Ordering::SeqCst);
                let (busy, peak) = (busy.clone(), peak.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let (busy, peak) = (busy.clone(), peak.clone());
                        async move {
                            let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            busy.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, connections, most)
    }

    /// What a receiver saw of one request.
    #[derive(Debug, Clone)]
    struct Seen {
        uri: String,
        authorization: Option<String>,
        user_agent: Option<String>,
        body: String,
    }

    /// A receiver that records each request and answers 200 with `answer_bytes` bytes after
    /// `delay`; counts the connections opened.
    async fn recording_receiver(
        delay: Duration,
        answer_bytes: usize,
    ) -> (
        std::net::SocketAddr,
        Arc<std::sync::Mutex<Vec<Seen>>>,
        Arc<AtomicUsize>,
    ) {
        use http_body_util::BodyExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (log, opened) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                opened.fetch_add(1, Ordering::SeqCst);
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            async move {
                                let header = |name: &str| {
                                    request
                                        .headers()
                                        .get(name)
                                        .map(|v| v.to_str().unwrap().to_string())
                                };
                                let (authorization, user_agent) =
                                    (header("authorization"), header("user-agent"));
                                let uri = request.uri().to_string();
                                let body = request.into_body().collect().await.unwrap();
                                log.lock().unwrap().push(Seen {
                                    uri,
                                    authorization,
                                    user_agent,
                                    body: String::from_utf8_lossy(&body.to_bytes()).into(),
                                });
                                tokio::time::sleep(delay).await;
                                Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                    http_body_util::Full::new(Bytes::from(vec![
                                        b'x';
                                        answer_bytes
                                    ])),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (address, seen, connections)
    }

    fn post(url: String) -> Request {
        Request {
            url,
            method: "POST".into(),
            params: vec![("MessageSid".into(), "SM1".into())],
            json_body: None,
            auth_token: "token".into(),
            idempotency_token: "id1".into(),
        }
    }

    fn client(allow_private_targets: bool, timeout: Duration) -> WebhookClient {
        WebhookClient::new(&WebhookSettings {
            allow_private_targets,
            timeout,
            ..WebhookSettings::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn credentials_in_the_url_are_sent_as_basic_authentication_not_in_the_request_line() {
        let (address, seen, _) = recording_receiver(Duration::ZERO, 2).await;
        let client = client(true, Duration::from_secs(5));
        // The second request goes to the target remembered from the first.
        for _ in 0..2 {
            let response = client
                .send(&post(format!(
                    "http://us%40er:pa%3Ass@{address}/status?x=1"
                )))
                .await;
            assert!(
                matches!(&response.result, Ok(answer) if answer.status == 200 && answer.body == "xx")
            );
        }
        let expected = base64::engine::general_purpose::STANDARD.encode("us@er:pa:ss");
        for sent in seen.lock().unwrap().iter() {
            assert_eq!(sent.uri, "/status?x=1");
            assert_eq!(sent.authorization, Some(format!("Basic {expected}")));
            assert_eq!(sent.user_agent.as_deref(), Some(USER_AGENT));
            assert_eq!(sent.body, "MessageSid=SM1");
        }
        // Without credentials, no Authorization header.
        client.send(&post(format!("http://{address}/plain"))).await;
        let plain = seen.lock().unwrap()[2].clone();
        assert_eq!((plain.uri.as_str(), plain.authorization), ("/plain", None));
    }

    #[tokio::test]
    async fn private_targets_are_refused_by_address_and_by_name_unless_allowed() {
        let (address, seen, connections) = recording_receiver(Duration::ZERO, 0).await;
        let guarded = client(false, Duration::from_secs(5));
        let by_address = guarded.send(&post(format!("http://{address}/a"))).await;
        assert!(
            matches!(&by_address.result, Err(reason) if reason.contains("private address")),
            "{:?}",
            by_address.result
        );
        // A name is checked when connecting, each time: its target is remembered, not trusted.
        for _ in 0..2 {
            let by_name = guarded
                .send(&post(format!("http://localhost:{}/b", address.port())))
                .await;
            assert!(
                matches!(&by_name.result, Err(reason) if reason.contains("no public address")),
                "{:?}",
                by_name.result
            );
            assert_eq!(failure_cause(&by_name), Some("connect"));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 0);
        let allowed = client(true, Duration::from_secs(5))
            .send(&post(format!("http://localhost:{}/c", address.port())))
            .await;
        assert!(matches!(&allowed.result, Ok(answer) if answer.status == 200));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_https_url_is_spoken_to_in_tls() {
        // A plain-HTTP receiver: the client's TLS handshake is not an HTTP request to it.
        let (address, seen, connections) = recording_receiver(Duration::ZERO, 0).await;
        let response = client(true, Duration::from_secs(5))
            .send(&post(format!("https://{address}/tls")))
            .await;
        assert!(
            matches!(&response.result, Err(reason) if reason.starts_with("connection failed")),
            "{:?}",
            response.result
        );
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_and_a_huge_one_is_refused() {
        let (slow, _, _) = recording_receiver(Duration::from_millis(500), 2).await;
        let response = client(true, Duration::from_millis(100))
            .send(&post(format!("http://{slow}/slow")))
            .await;
        assert!(
            matches!(&response.result, Err(reason) if reason.starts_with("timeout")),
            "{:?}",
            response.result
        );
        assert_eq!(failure_cause(&response), Some("timeout"));
        let (huge, _, _) = recording_receiver(Duration::ZERO, MAX_RESPONSE_BYTES + 1).await;
        let response = client(true, Duration::from_secs(5))
            .send(&post(format!("http://{huge}/huge")))
            .await;
        assert!(
            matches!(&response.result, Err(reason) if reason == "response body too large"),
            "{:?}",
            response.result
        );
        // Refused before any request: an unsupported scheme.
        let response = client(true, Duration::from_secs(5))
            .send(&post("ftp://example.com/x".into()))
            .await;
        assert_eq!(failure_cause(&response), Some("refused"));
    }

    #[tokio::test]
    async fn a_burst_of_callbacks_to_one_receiver_reuses_a_bounded_set_of_connections() {
        let (url, connections, most) = slow_receiver().await;
        let client = WebhookClient::new(&WebhookSettings {
            allow_private_targets: true,
            ..WebhookSettings::default()
        })
        .unwrap();
        let requests = (0..300).map(|i| {
            let client = client.clone();
            let request = Request {
                url: url.clone(),
                method: "POST".into(),
                params: vec![("MessageSid".into(), format!("SM{i}"))],
                json_body: None,
                auth_token: "token".into(),
                idempotency_token: format!("id{i}"),
            };
            async move { client.send(&request).await }
        });
        let responses = futures_util::future::join_all(requests).await;
        assert!(responses
            .iter()
            .all(|r| matches!(&r.result, Ok(answer) if answer.status == 200)));
        assert!(most.load(Ordering::SeqCst) <= CONNECTIONS_PER_RECEIVER);
        // Every request had its own connection before: 300 here.
        let opened = connections.load(Ordering::SeqCst);
        assert!(
            opened <= CONNECTIONS_PER_RECEIVER,
            "{opened} connections for 300 requests"
        );
    }
}
