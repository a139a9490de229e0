//! Response bodies in Twilio's shapes: resources with the spec's field names and date formats,
//! and the 2010-04-01 paging envelope.

use crate::domain::account::Account;
use crate::domain::credential::ApiKey;
use crate::domain::number::{
    display_name, IncomingNumber, InventoryNumber, NumberType, NUMBER_FIELDS,
};
use crate::domain::paging::{Cursor, PageRequest};
use crate::domain::time::rfc2822;
use serde_json::{json, Map, Value};

/// The account subresources Twilio lists in `subresource_uris`, with their path names.
const ACCOUNT_SUBRESOURCES: &[(&str, &str)] = &[
    ("addresses", "Addresses"),
    ("conferences", "Conferences"),
    ("signing_keys", "SigningKeys"),
    ("transcriptions", "Transcriptions"),
    ("connect_apps", "ConnectApps"),
    ("sip", "SIP"),
    ("authorized_connect_apps", "AuthorizedConnectApps"),
    ("usage", "Usage"),
    ("keys", "Keys"),
    ("applications", "Applications"),
    ("recordings", "Recordings"),
    ("short_codes", "SMS/ShortCodes"),
    ("calls", "Calls"),
    ("notifications", "Notifications"),
    ("incoming_phone_numbers", "IncomingPhoneNumbers"),
    ("queues", "Queues"),
    ("messages", "Messages"),
    ("outgoing_caller_ids", "OutgoingCallerIds"),
    ("available_phone_numbers", "AvailablePhoneNumbers"),
    ("balance", "Balance"),
];

/// An account. Only auth-token callers reach it (API keys may not), so the token is shown.
pub fn account(account: &Account) -> Value {
    let base = format!("/2010-04-01/Accounts/{}", account.sid);
    let subresources: Map<String, Value> = ACCOUNT_SUBRESOURCES
        .iter()
        .map(|(key, name)| {
            (
                key.to_string(),
                Value::String(format!("{base}/{name}.json")),
            )
        })
        .collect();
    json!({
        "auth_token": account.auth_token,
        "date_created": rfc2822(account.date_created),
        "date_updated": rfc2822(account.date_updated),
        "friendly_name": account.friendly_name,
        "owner_account_sid": account.owner_sid(),
        "sid": account.sid,
        "status": account.status.as_str(),
        "subresource_uris": subresources,
        "type": "Full",
        "uri": format!("{base}.json"),
    })
}

/// An API key as listed and fetched (never with its secret).
pub fn key(key: &ApiKey) -> Value {
    json!({
        "sid": key.sid,
        "friendly_name": key.friendly_name,
        "date_created": rfc2822(key.date_created),
        "date_updated": rfc2822(key.date_updated),
    })
}

/// A key just created: the only time its secret is shown.
pub fn new_key(key: &ApiKey, secret: &str) -> Value {
    let mut value = self::key(key);
    value["secret"] = Value::String(secret.to_string());
    value
}

/// A country of the AvailablePhoneNumbers resource, with links to the number types stocked.
pub fn available_country(account_sid: &str, code: &str, kinds: &[NumberType]) -> Value {
    let base = format!("/2010-04-01/Accounts/{account_sid}/AvailablePhoneNumbers/{code}");
    let mut links = Map::new();
    for kind in kinds {
        let (key, name) = match kind {
            NumberType::Local => ("local", "Local"),
            NumberType::Mobile => ("mobile", "Mobile"),
            NumberType::TollFree => ("toll_free", "TollFree"),
            NumberType::ShortCode => continue,
        };
        links.insert(key.into(), Value::String(format!("{base}/{name}.json")));
    }
    // Twilio uses the short English names for these; ISO's long forms for the rest.
    let country = match code {
        "US" => "United States".to_string(),
        "GB" => "United Kingdom".to_string(),
        _ => isocountry::CountryCode::for_alpha2(code)
            .map(|c| c.name().to_string())
            .unwrap_or_else(|_| code.to_string()),
    };
    json!({
        "country_code": code,
        "country": country,
        "uri": format!("{base}.json"),
        "beta": false,
        "subresource_uris": links,
    })
}

/// A number found by an AvailablePhoneNumbers search.
pub fn available_number(n: &InventoryNumber) -> Value {
    json!({
        "friendly_name": display_name(&n.phone_number),
        "phone_number": n.phone_number,
        "lata": null,
        "locality": n.locality,
        "rate_center": null,
        "latitude": null,
        "longitude": null,
        "region": n.region,
        "postal_code": n.postal_code,
        "iso_country": n.iso_country,
        "address_requirements": "none",
        "beta": false,
        "capabilities": {
            "voice": n.capabilities.voice,
            "sms": n.capabilities.sms,
            "mms": n.capabilities.mms,
            "fax": false,
        },
    })
}

/// An IncomingPhoneNumber. Unset URLs print as `""` and unset SIDs as `null`, as Twilio does.
pub fn incoming_number(n: &IncomingNumber) -> Value {
    let mut body = Map::new();
    for field in NUMBER_FIELDS {
        let value = match (n.get(field.column), field.kind) {
            (Some(v), crate::domain::number::FieldKind::Bool) => Value::Bool(v == "true"),
            (Some(v), _) => Value::String(v.to_string()),
            (None, crate::domain::number::FieldKind::Url) => Value::String(String::new()),
            (None, _) => Value::Null,
        };
        body.insert(field.column.to_string(), value);
    }
    let uri = format!(
        "/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json",
        n.account_sid, n.sid
    );
    let extra = json!({
        "sid": n.sid,
        "account_sid": n.account_sid,
        "phone_number": n.inventory.phone_number,
        "address_requirements": "none",
        "beta": false,
        "capabilities": {
            "voice": n.inventory.capabilities.voice,
            "sms": n.inventory.capabilities.sms,
            "mms": n.inventory.capabilities.mms,
            "fax": false,
        },
        "origin": "twilio",
        "status": "in-use",
        "type": n.inventory.number_type.twilio_name(),
        "emergency_address_status": "unregistered",
        "date_created": rfc2822(n.date_created),
        "date_updated": rfc2822(n.date_updated),
        "uri": uri,
        "subresource_uris": {
            "assigned_add_ons": format!(
                "/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}/AssignedAddOns.json",
                n.account_sid, n.sid
            ),
        },
    });
    if let Value::Object(extra) = extra {
        body.extend(extra);
    }
    Value::Object(body)
}

/// An IncomingPhoneNumber as the `Local` / `Mobile` / `TollFree` sub-resources print it:
/// their schemas have no `type` (the path says it).
pub fn typed_incoming_number(n: &IncomingNumber) -> Value {
    let mut body = incoming_number(n);
    if let Value::Object(map) = &mut body {
        map.remove("type");
    }
    body
}

/// One page of a 2010-04-01 list.
pub struct ListPage<'a> {
    /// The list's path with `.json`, e.g. `/2010-04-01/Accounts.json`.
    pub path: &'a str,
    /// The list's key in the body, e.g. `accounts`.
    pub key: &'a str,
    /// The filters the client gave, re-emitted in every page URI.
    pub filters: Vec<(&'static str, String)>,
    pub page: &'a PageRequest,
}

impl ListPage<'_> {
    /// Like `render`, for lists paged by index only (no `PageToken`).
    pub fn render_by_index<T>(&self, mut rows: Vec<T>, item: impl Fn(&T) -> Value) -> Value {
        let page_size = self.page.page_size as usize;
        let has_next = rows.len() > page_size;
        rows.truncate(page_size);
        let mut body = self.envelope(&rows, item);
        if has_next {
            body["next_page_uri"] = Value::String(self.uri(self.page.page + 1, None));
        }
        body
    }

    /// Renders `rows` (fetched with `page.fetch_limit()`, one more than a page) into the
    /// envelope. `cursor` gives a row's position for the next page's token.
    pub fn render<T>(
        &self,
        mut rows: Vec<T>,
        cursor: impl Fn(&T) -> Cursor,
        item: impl Fn(&T) -> Value,
    ) -> Value {
        let page_size = self.page.page_size as usize;
        let has_next = rows.len() > page_size;
        rows.truncate(page_size);
        let mut body = self.envelope(&rows, item);
        if let (true, Some(last)) = (has_next, rows.last()) {
            body["next_page_uri"] =
                Value::String(self.uri(self.page.page + 1, Some(&cursor(last).to_token())));
        }
        body
    }

    /// The envelope around one page of rows, without a next page.
    fn envelope<T>(&self, rows: &[T], item: impl Fn(&T) -> Value) -> Value {
        let page_size = self.page.page_size as usize;
        let previous_page_uri = if self.page.page > 0 {
            Value::String(self.uri(self.page.page - 1, None))
        } else {
            Value::Null
        };
        let (start, end) = if rows.is_empty() {
            (0, 0)
        } else {
            let start = u64::from(self.page.page) * page_size as u64;
            (start, start + rows.len() as u64 - 1)
        };
        let current_token = self.page.after.as_ref().map(Cursor::to_token);
        let mut body = Map::new();
        body.insert("first_page_uri".into(), Value::String(self.uri(0, None)));
        body.insert("end".into(), json!(end));
        body.insert("previous_page_uri".into(), previous_page_uri);
        body.insert(
            self.key.to_string(),
            Value::Array(rows.iter().map(item).collect()),
        );
        body.insert(
            "uri".into(),
            Value::String(self.uri(self.page.page, current_token.as_deref())),
        );
        body.insert("page_size".into(), json!(page_size));
        body.insert("start".into(), json!(start));
        body.insert("next_page_uri".into(), Value::Null);
        body.insert("page".into(), json!(self.page.page));
        Value::Object(body)
    }

    fn uri(&self, page: u32, token: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.filters {
            query.append_pair(name, value);
        }
        query.append_pair("PageSize", &self.page.page_size.to_string());
        query.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            query.append_pair("PageToken", token);
        }
        format!("{}?{}", self.path, query.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u32, size: &str) -> PageRequest {
        PageRequest::parse(Some(&n.to_string()), Some(size), None).unwrap()
    }

    fn cursor(n: &u32) -> Cursor {
        Cursor {
            created: i64::from(*n),
            sid: format!("AC{:032x}", n),
        }
    }

    #[test]
    fn a_full_page_links_to_the_next_with_a_token() {
        let request = page(0, "2");
        let list = ListPage {
            path: "/2010-04-01/Accounts.json",
            key: "accounts",
            filters: vec![("Status", "active".into())],
            page: &request,
        };
        let body = list.render(vec![1u32, 2, 3], cursor, |n| json!(n));
        assert_eq!(body["accounts"], json!([1, 2]));
        assert_eq!(
            (body["start"].clone(), body["end"].clone()),
            (json!(0), json!(1))
        );
        assert_eq!(
            body["first_page_uri"],
            "/2010-04-01/Accounts.json?Status=active&PageSize=2&Page=0"
        );
        assert_eq!(
            body["next_page_uri"],
            format!(
                "/2010-04-01/Accounts.json?Status=active&PageSize=2&Page=1&PageToken=PA{}_2",
                cursor(&2).sid
            )
        );
        assert_eq!(body["previous_page_uri"], Value::Null);
        // Exactly one key besides the paging metadata: the SDKs depend on it.
        assert_eq!(body.as_object().unwrap().len(), 9);
    }

    #[test]
    fn the_last_page_has_no_next_and_an_empty_page_starts_at_zero() {
        let request = page(1, "2");
        let list = ListPage {
            path: "/x.json",
            key: "keys",
            filters: vec![],
            page: &request,
        };
        let body = list.render(vec![3u32], cursor, |n| json!(n));
        assert_eq!(body["next_page_uri"], Value::Null);
        assert_eq!(body["previous_page_uri"], "/x.json?PageSize=2&Page=0");
        assert_eq!(
            (body["start"].clone(), body["end"].clone()),
            (json!(2), json!(2))
        );
        let empty = list.render(Vec::<u32>::new(), cursor, |n| json!(n));
        assert_eq!(
            (empty["start"].clone(), empty["end"].clone()),
            (json!(0), json!(0))
        );
    }
}
