//! `GET /openapi.json` against the router: every route of `api::routes()` is described, and
//! every described operation is routed (its path matches a route and its method is served).

mod common;

use axum::http::{Method, StatusCode};
use common::{spawn, MAIN_SID};
use std::collections::{BTreeMap, BTreeSet};
use warbler::api::openapi::OPERATIONS;

/// A described path with its parameters filled in (the caller's account, else a placeholder).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let (name, suffix) = match segment.strip_suffix(".json") {
                Some(name) => (name, ".json"),
                None => (segment, ""),
            };
            match name.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                Some("AccountSid") => format!("{MAIN_SID}{suffix}"),
                Some("CountryCode") => format!("US{suffix}"),
                Some(other) => format!("{other}0{suffix}"),
                None => segment.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.to_ascii_uppercase().as_bytes()).unwrap()
}

#[test]
fn every_route_of_the_router_is_described() {
    // The routes as `api::routes()` registers them (rustfmt keeps `.route(` + the path literal).
    let source = include_str!("../src/api/mod.rs");
    let routed: BTreeSet<&str> = source
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .collect();
    assert!(routed.len() > 30, "{routed:?}");
    let described: BTreeSet<&str> = OPERATIONS.iter().map(|o| o.route).collect();
    assert_eq!(
        routed.difference(&described).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "routes without a description in api/openapi.rs"
    );
    assert_eq!(
        described.difference(&routed).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "descriptions of routes that do not exist"
    );
}

#[tokio::test]
async fn every_described_operation_answers_and_no_other_method_does() {
    let server = spawn().await;
    let mut methods_by_route: BTreeMap<&str, (BTreeSet<&str>, String)> = BTreeMap::new();
    for operation in OPERATIONS {
        let path = concrete(operation.path);
        // PUT is served nowhere: 405 shows the path reached a route (an unrouted one is 404).
        let put = server
            .call(Method::PUT, &path, server.main_creds(), &[])
            .await;
        assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED, "PUT {path}");
        let answered = server
            .call(method(operation.method), &path, server.main_creds(), &[])
            .await;
        assert_ne!(
            answered.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {path} ({})",
            operation.method,
            operation.operation_id
        );
        let entry = methods_by_route
            .entry(operation.route)
            .or_insert_with(|| (BTreeSet::new(), path.clone()));
        entry.0.insert(operation.method);
    }
    for (route, (described, path)) in methods_by_route {
        for name in ["get", "post", "delete"] {
            if !described.contains(name) {
                let reply = server
                    .call(method(name), &path, server.main_creds(), &[])
                    .await;
                assert_eq!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{name} {path} ({route}) is served but not described"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_document_is_served_without_credentials() {
    let server = spawn().await;
    let request = axum::http::Request::builder()
        .uri("/openapi.json")
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = server.raw(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["openapi"], "3.0.3");
    assert_eq!(reply.body["servers"][0]["url"], common::PUBLIC_URL);
    let messages = &reply.body["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"];
    assert_eq!(messages["post"]["operationId"], "CreateMessage");
    assert_eq!(messages["post"]["x-twilio-spec"], "twilio_api_v2010.json");
    assert_eq!(
        reply.body["paths"]["/v1/Keys"]["post"]["x-twilio-operation-id"],
        "CreateNewKey"
    );
    let operations: usize = reply.body["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(operations, OPERATIONS.len());
}
