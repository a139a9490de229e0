//! Shapes of the v1 APIs (messaging.twilio.com): ISO 8601 dates, absolute `url` and `links`,
//! and the `meta` paging envelope whose URLs the SDKs follow verbatim.

use crate::domain::messaging_service::MessagingService;
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::iso8601;
use crate::store::messaging::{AlphaSender, PooledNumber};
use serde_json::{json, Map, Value};

/// One page of a v1 list.
pub struct V1Page<'a> {
    /// Absolute URL of the list, e.g. `https://host/v1/Services`.
    pub url: String,
    pub key: &'a str,
    /// The list's filters, repeated in its page URLs (`AccountSid`, `LogLevel`…).
    pub filters: Vec<(&'a str, String)>,
    pub page: &'a PageRequest,
}

impl V1Page<'_> {
    pub fn render<T>(
        &self,
        mut rows: Vec<T>,
        cursor: impl Fn(&T) -> Cursor,
        item: impl Fn(&T) -> Value,
    ) -> Value {
        let page_size = self.page.page_size as usize;
        let has_next = rows.len() > page_size;
        rows.truncate(page_size);
        let next = match (has_next, rows.last()) {
            (true, Some(last)) => {
                Value::String(self.page_url(self.page.page + 1, Some(&cursor(last).to_token())))
            }
            _ => Value::Null,
        };
        let previous = if self.page.page > 0 {
            Value::String(self.page_url(self.page.page - 1, None))
        } else {
            Value::Null
        };
        let current_token = self.page.after.as_ref().map(Cursor::to_token);
        let mut body = Map::new();
        body.insert(
            self.key.to_string(),
            Value::Array(rows.iter().map(item).collect()),
        );
        body.insert(
            "meta".into(),
            json!({
                "page": self.page.page,
                "page_size": page_size,
                "first_page_url": self.page_url(0, None),
                "previous_page_url": previous,
                "url": self.page_url(self.page.page, current_token.as_deref()),
                "next_page_url": next,
                "key": self.key,
            }),
        );
        Value::Object(body)
    }

    fn page_url(&self, page: u32, token: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.filters {
            query.append_pair(name, value);
        }
        query.append_pair("PageSize", &self.page.page_size.to_string());
        query.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            query.append_pair("PageToken", token);
        }
        format!("{}?{}", self.url, query.finish())
    }
}

/// A service; `registered`: it has a VERIFIED A2P campaign.
pub fn service(base: &str, s: &MessagingService, registered: bool) -> Value {
    let url = format!("{base}/v1/Services/{}", s.sid);
    json!({
        "sid": s.sid,
        "account_sid": s.account_sid,
        "friendly_name": s.friendly_name,
        "date_created": iso8601(s.date_created),
        "date_updated": iso8601(s.date_updated),
        "inbound_request_url": s.inbound_request_url,
        "inbound_method": s.inbound_method,
        "fallback_url": s.fallback_url,
        "fallback_method": s.fallback_method,
        "status_callback": s.status_callback,
        "sticky_sender": s.sticky_sender,
        "mms_converter": s.mms_converter,
        "smart_encoding": s.smart_encoding,
        "scan_message_content": s.scan_message_content,
        "fallback_to_long_code": s.fallback_to_long_code,
        "area_code_geomatch": s.area_code_geomatch,
        "synchronous_validation": s.synchronous_validation,
        "validity_period": s.validity_period,
        "usecase": s.usecase,
        "us_app_to_person_registered": registered,
        "use_inbound_webhook_on_number": s.use_inbound_webhook_on_number,
        "links": {
            "phone_numbers": format!("{url}/PhoneNumbers"),
            "short_codes": format!("{url}/ShortCodes"),
            "alpha_senders": format!("{url}/AlphaSenders"),
            "messages": format!("{url}/Messages"),
            "us_app_to_person": format!("{url}/Compliance/Usa2p"),
            "us_app_to_person_usecases": format!("{url}/Compliance/Usa2p/Usecases"),
            "channel_senders": format!("{url}/ChannelSenders"),
            "destination_alpha_senders": format!("{url}/DestinationAlphaSenders"),
        },
        "url": url,
    })
}

/// A pool member: `PhoneNumbers` items carry `phone_number`, `ShortCodes` items `short_code`.
pub fn pooled_number(base: &str, n: &PooledNumber, short_code: bool) -> Value {
    let mut capabilities = Vec::new();
    if n.sms {
        capabilities.push("SMS");
    }
    if n.mms {
        capabilities.push("MMS");
    }
    if n.voice && !short_code {
        capabilities.push("Voice");
    }
    let (collection, number_key) = if short_code {
        ("ShortCodes", "short_code")
    } else {
        ("PhoneNumbers", "phone_number")
    };
    let mut body = json!({
        "sid": n.sid,
        "account_sid": n.account_sid,
        "service_sid": n.service_sid,
        "date_created": iso8601(n.added),
        "date_updated": iso8601(n.date_updated.max(n.added)),
        "country_code": n.iso_country,
        "capabilities": capabilities,
        "url": format!("{base}/v1/Services/{}/{collection}/{}", n.service_sid, n.sid),
    });
    body[number_key] = Value::String(n.phone_number.clone());
    body
}

pub fn alpha_sender(base: &str, a: &AlphaSender) -> Value {
    json!({
        "sid": a.sid,
        "account_sid": a.account_sid,
        "service_sid": a.service_sid,
        "date_created": iso8601(a.date_created),
        "date_updated": iso8601(a.date_updated),
        "alpha_sender": a.alpha_sender,
        "capabilities": ["SMS"],
        "url": format!("{base}/v1/Services/{}/AlphaSenders/{}", a.service_sid, a.sid),
    })
}
