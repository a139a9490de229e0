//! Monitor alerts (`/v1/Alerts`): what went wrong with a webhook or its TwiML, kept for the
//! account (and visible to its parent).

/// A failed webhook request (HTTP error, timeout, connection refused).
pub const HTTP_RETRIEVAL_FAILURE: i64 = 11200;
/// The webhook answered with a document that is not valid messaging TwiML.
pub const DOCUMENT_PARSE_FAILURE: i64 = 12100;
/// A `<Message>` in TwiML could not be sent (bad `to`/`from`, opted-out recipient…).
pub const INVALID_MESSAGE_VERB: i64 = 14101;
/// More `<Message>` replies to one incoming message than Twilio sends (a warning).
pub const REPLY_LIMIT_EXCEEDED: i64 = 14109;
/// Most TwiML `<Message>` replies sent for one incoming message (Twilio's limit; 14109 past it).
pub const MAX_TWIML_REPLIES: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub sid: String,
    pub account_sid: String,
    /// Twilio's error code, a string in the API.
    pub error_code: String,
    /// `error`, `warning`, `notice` or `debug`.
    pub log_level: String,
    /// URL-encoded details (`Msg=…&sourceComponent=…&ErrorCode=…&url=…&LogLevel=ERROR`).
    pub alert_text: String,
    pub resource_sid: Option<String>,
    pub service_sid: Option<String>,
    pub request_method: Option<String>,
    pub request_url: Option<String>,
    pub request_variables: Option<String>,
    pub request_headers: Option<String>,
    pub response_body: Option<String>,
    pub response_headers: Option<String>,
    pub date_created: i64,
}

/// Builds `alert_text` as Twilio writes it.
pub fn alert_text(message: &str, code: i64, url: &str, http_status: Option<u16>) -> String {
    alert_text_at("ERROR", message, code, url, http_status)
}

/// `alert_text` at another log level (`WARNING`…).
pub fn alert_text_at(
    level: &str,
    message: &str,
    code: i64,
    url: &str,
    http_status: Option<u16>,
) -> String {
    let mut text = form_urlencoded::Serializer::new(String::new());
    text.append_pair("Msg", message)
        .append_pair("sourceComponent", "14100")
        .append_pair("ErrorCode", &code.to_string());
    if let Some(status) = http_status {
        text.append_pair("httpResponse", &status.to_string());
    }
    text.append_pair("url", url).append_pair("LogLevel", level);
    text.finish()
}

/// Form-encodes headers or variables for the alert's captured request and response.
pub fn encode_pairs(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_text_is_url_encoded() {
        let text = alert_text("Bad gateway", 11200, "https://x.example/a?b=1", Some(502));
        assert_eq!(
            text,
            "Msg=Bad+gateway&sourceComponent=14100&ErrorCode=11200&httpResponse=502&url=https%3A%2F%2Fx.example%2Fa%3Fb%3D1&LogLevel=ERROR"
        );
    }
}
