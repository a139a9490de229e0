//! Outgoing webhooks: the HTTP client that sends them (signed with `X-Twilio-Signature`,
//! with timeouts, refusing private addresses unless allowed). What to send and when (the
//! durable outbox, retries, alerts) is decided in `engine::webhooks`.

mod guard;
pub mod signature;

use std::collections::HashMap;
use std::time::Duration;

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
    pub request_headers: Vec<(String, String)>,
    pub result: std::result::Result<Answer, String>,
}

/// An HTTP answer (any status).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

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

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private_targets: bool,
    receivers:
        std::sync::Arc<std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>>,
}

/// Installs rustls' `ring` crypto provider for the process (once; later calls do nothing).
/// reqwest is built without a bundled provider, so every reqwest client needs this first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl WebhookClient {
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<WebhookClient> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the target itself, past the private-address guard.
            .no_proxy()
            .user_agent("TwilioProxy/1.1")
            .pool_max_idle_per_host(CONNECTIONS_PER_RECEIVER);
        if !settings.allow_private_targets {
            builder = builder.dns_resolver(std::sync::Arc::new(guard::PublicOnly));
        }
        Ok(WebhookClient {
            http: builder.build()?,
            allow_private_targets: settings.allow_private_targets,
            receivers: std::sync::Arc::default(),
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
            // the receivers forgotten is briefly doubled.
            receivers.clear();
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
                Err(err) => return failed(url, Vec::new(), format!("invalid URL: {err}")),
            };
            parsed.query_pairs_mut().extend_pairs(borrowed.iter());
            url = parsed.to_string();
            signature::sign_form(&request.auth_token, &url, &[])
        } else {
            signature::sign_form(&request.auth_token, &url, &borrowed)
        };
        let headers = vec![
            ("X-Twilio-Signature".to_string(), signature),
            (
                "I-Twilio-Idempotency-Token".to_string(),
                request.idempotency_token.clone(),
            ),
            ("Accept".to_string(), "*/*".to_string()),
            ("Cache-Control".to_string(), "max-age=259200".to_string()),
        ];
        let target = match self.check_target(&url) {
            Ok(target) => target,
            Err(reason) => return failed(url, headers, reason),
        };
        let slots = self.receiver_slots(&target);
        let Ok(_slot) = slots.acquire().await else {
            return failed(url, headers, "webhook client closed".into());
        };
        // The URL parsed once, by `check_target`, rather than again by the client.
        let mut builder = if let Some(body) = &request.json_body {
            self.http
                .post(target)
                .header("Content-Type", "application/json; charset=utf-8")
                .body(body.clone())
        } else if get {
            self.http.get(target)
        } else {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(borrowed.iter())
                .finish();
            self.http
                .post(target)
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(body)
        };
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        let mut response = match builder.send().await {
            Ok(response) => response,
            Err(err) => return failed(url, headers, describe(&err)),
        };
        let status = response.status().as_u16();
        let answer_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_RESPONSE_BYTES {
                        return failed(url, headers, "response body too large".into());
                    }
                }
                Ok(None) => break,
                Err(err) => return failed(url, headers, describe(&err)),
            }
        }
        Response {
            url,
            request_headers: headers,
            result: Ok(Answer {
                status,
                content_type,
                headers: answer_headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }),
        }
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

fn failed(url: String, request_headers: Vec<(String, String)>, reason: String) -> Response {
    Response {
        url,
        request_headers,
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

fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match err.source() {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
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
