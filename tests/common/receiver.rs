//! A webhook receiver for tests: an HTTP server on 127.0.0.1 that records every request and
//! answers from a per-path script.

use axum::http::StatusCode;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use warbler::webhook::signature::sign_form;

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub query: String,
    pub method: String,
    pub signature: String,
    pub form: Vec<(String, String)>,
}

impl Hit {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Script = HashMap<String, VecDeque<(u16, &'static str, String)>>;

/// A webhook receiver: records every request, answers from a per-path script (200 with an
/// empty body when the script is empty).
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_on(0).await
    }

    /// A receiver on `port` (0: any free port).
    pub async fn start_on(port: u16) -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script: Arc<Mutex<Script>> = Arc::default();
        let (h, s) = (hits.clone(), script.clone());
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (hits, script) = (h.clone(), s.clone());
            async move {
                let path = request.uri().path().to_string();
                let method = request.method().to_string();
                let query = request.uri().query().unwrap_or("").to_string();
                let signature = request
                    .headers()
                    .get("x-twilio-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                let raw = if method == "GET" {
                    query.into_bytes()
                } else {
                    body.to_vec()
                };
                let form = form_urlencoded::parse(&raw).into_owned().collect();
                hits.lock().unwrap().push(Hit {
                    path: path.clone(),
                    query: String::from_utf8_lossy(&raw).into_owned(),
                    method,
                    signature,
                    form,
                });
                let answer = script
                    .lock()
                    .unwrap()
                    .get_mut(&path)
                    .and_then(|queue| queue.pop_front());
                let (status, content_type, body) =
                    answer.unwrap_or((200, "text/xml", String::new()));
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", content_type)],
                    body,
                )
            }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, hits, script }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn answer(&self, path: &str, status: u16, content_type: &'static str, body: &str) {
        self.script
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .push_back((status, content_type, body.to_string()));
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// Checks every POST carries the signature of its URL and form under `token`.
    pub fn assert_signed(&self, token: &str) {
        for hit in self.hits.lock().unwrap().iter() {
            assert_eq!(hit.method, "POST");
            let params: Vec<(&str, &str)> = hit
                .form
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let expected = sign_form(token, &self.url(&hit.path), &params);
            assert_eq!(hit.signature, expected, "signature of {hit:?}");
        }
    }
}
