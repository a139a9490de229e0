//! Request parameters as Twilio sends them: form-encoded bodies and query strings, repeated keys
//! allowed (`MediaUrl=a&MediaUrl=b`), unknown keys ignored, malformed values refused with a
//! Twilio error rather than a framework rejection.

use super::{ApiState, RequestPath};
use crate::domain::time::{filter_day, filter_span, Micros};
use crate::error::{Error, Result};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

/// All parameters of a request: the query string, then (for POST) the form body.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of `name`, if present (an empty value counts as present).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A value parsed by `parse`, refused with 20001 when it does not parse.
    pub fn parsed<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => parse(raw)
                .map(Some)
                .ok_or_else(|| Error::invalid_parameter(name, raw)),
        }
    }

    /// A date filter bound's span (`DateSent<`, `StartDate`…): a bare date is the whole GMT
    /// day, a date-time that one second; see [`filter_span`].
    pub fn date_span(&self, name: &str) -> Result<Option<(Micros, Micros)>> {
        self.parsed(name, filter_span)
    }

    /// An equality date filter's day (`DateSent=`), given as a date or a date-time; see
    /// [`filter_day`].
    pub fn date_day(&self, name: &str) -> Result<Option<(Micros, Micros)>> {
        self.parsed(name, filter_day)
    }

    /// A Twilio boolean: `true` or `false` (any case).
    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        self.parsed(name, |raw| match raw.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
    }
}

/// Parses a query string and a form body into parameters, refusing NUL characters. Pure, so
/// that it can be fuzzed (fuzz/fuzz_targets/form_params.rs).
pub fn parse_form(query: &[u8], body: &[u8]) -> Result<Params> {
    let mut pairs = parse_pairs(query);
    let mut body_pairs = parse_pairs(body);
    // Body values come first: they are what the SDKs send.
    body_pairs.append(&mut pairs);
    Ok(Params::from_pairs(without_nul(body_pairs)?))
}

fn parse_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// Refuses a parameter holding a NUL character: no text field takes one, PostgreSQL cannot
/// store one (its failure would fail a whole group of other requests' messages), and SQLite
/// would store what PostgreSQL refuses.
fn without_nul(pairs: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
    match pairs
        .iter()
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        Some((name, _)) => Err(Error::invalid(
            20001,
            format!(
                "Invalid value for parameter {}: it contains a NUL character",
                name.replace('\0', "\\0")
            ),
        )),
        None => Ok(pairs),
    }
}

/// Query-string parameters only (GET and DELETE).
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Query(parse_form(query.as_bytes(), b"")?))
    }
}

/// Query string plus form body (POST), read up to the configured size limit.
pub struct Form(pub Params);

impl FromRequest<ApiState> for Form {
    type Rejection = Error;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self> {
        let query = request
            .uri()
            .query()
            .unwrap_or_default()
            .as_bytes()
            .to_vec();
        let body = read_body(request, state.max_body_bytes).await?;
        Ok(Form(parse_form(&query, &body)?))
    }
}

/// Reads a whole request body, refusing more than `limit` bytes.
async fn read_body(request: Request, limit: usize) -> Result<axum::body::Bytes> {
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit })
}

/// A JSON object body (the Content API's create, which the SDKs send as JSON), read up to the
/// configured size limit; anything else is refused with 400 / 20001.
pub struct JsonBody(pub serde_json::Map<String, serde_json::Value>);

impl FromRequest<ApiState> for JsonBody {
    type Rejection = Error;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self> {
        let body = read_body(request, state.max_body_bytes).await?;
        match serde_json::from_slice(&body) {
            Ok(serde_json::Value::Object(object)) => Ok(JsonBody(object)),
            _ => Err(Error::invalid(
                20001,
                "The request body must be a JSON object",
            )),
        }
    }
}

/// The raw body (e.g. an inventory CSV), read up to the configured size limit.
pub struct RawBody(pub axum::body::Bytes);

impl FromRequest<ApiState> for RawBody {
    type Rejection = Error;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self> {
        Ok(RawBody(read_body(request, state.max_body_bytes).await?))
    }
}

/// The original request path, for error messages.
pub struct Path(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Path {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        Ok(Path(
            parts
                .extensions
                .get::<RequestPath>()
                .map(|p| p.0.clone())
                .unwrap_or_else(|| parts.uri.path().to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_empty_values_are_kept() {
        let params = Params::from_pairs(parse_pairs(
            b"MediaUrl=https%3A%2F%2Fa%2F1.png&MediaUrl=https%3A%2F%2Fa%2F2.png&Body=&To=%2B15005550001",
        ));
        assert_eq!(
            params.all("MediaUrl"),
            vec!["https://a/1.png", "https://a/2.png"]
        );
        assert_eq!(params.get("Body"), Some(""));
        assert_eq!(params.get("To"), Some("+15005550001"));
        assert_eq!(params.get("From"), None);
    }

    #[test]
    fn a_nul_character_in_any_name_or_value_is_refused() {
        for raw in [&b"Body=a%00b"[..], b"To=%2B1&Fri%00endlyName=x", b"A=%00"] {
            let refused = without_nul(parse_pairs(raw)).unwrap_err();
            assert_eq!(
                (refused.code(), refused.http_status()),
                (20001, 400),
                "{raw:?}"
            );
        }
        assert_eq!(
            without_nul(parse_pairs(b"Body=a%01b")).unwrap().len(),
            1,
            "other control characters pass"
        );
    }

    #[test]
    fn a_day_filter_past_the_last_representable_day_is_refused_not_a_panic() {
        let params = Params::from_pairs(parse_pairs(
            b"A=9999-12-31T23:59:59-01:00&B=2024-02-01T10:00:00Z&C=2024-02-01&D=2024-13-01",
        ));
        assert_eq!(params.date_day("A").unwrap_err().code(), 20001);
        let day = params.date_day("B").unwrap().unwrap();
        assert_eq!(
            day,
            params.date_day("C").unwrap().unwrap(),
            "the time part is ignored"
        );
        assert_eq!(day.1 - day.0, 86_400_000_000 - 1);
        assert_eq!(params.date_day("D").unwrap_err().code(), 20001);
        assert_eq!(params.date_day("E").unwrap(), None);
    }

    #[test]
    fn booleans_follow_twilio_spelling() {
        let params = Params::from_pairs(parse_pairs(b"A=true&B=False&C=yes"));
        assert_eq!(params.bool("A").unwrap(), Some(true));
        assert_eq!(params.bool("B").unwrap(), Some(false));
        assert_eq!(params.bool("C").unwrap_err().code(), 20001);
        assert_eq!(params.bool("D").unwrap(), None);
    }
}
