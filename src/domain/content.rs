//! Content API templates (`HX…`, <https://www.twilio.com/docs/content>): the two types an SMS or
//! MMS can carry, `twilio/text` and `twilio/media`, whose text holds `{{1}}` or `{{name}}`
//! placeholders. A send fills them from its `ContentVariables`, else from the template's
//! default `variables`. Pure: parsing, validation and rendering, no storage.

use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const TEXT_TYPE: &str = "twilio/text";
pub const MEDIA_TYPE: &str = "twilio/media";

/// Bounds of a template, so one cannot outgrow what a message may carry.
pub const MAX_FRIENDLY_NAME_CHARS: usize = 64;
pub const MAX_LANGUAGE_CHARS: usize = 16;
pub const MAX_VARIABLES: usize = 100;
pub const MAX_VARIABLE_NAME_CHARS: usize = 64;
/// Templates one account may hold.
pub const MAX_TEMPLATES_PER_ACCOUNT: u32 = 1000;

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentTemplate {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub language: String,
    /// Default values of the placeholders, by name (`"1"`, `"name"`).
    pub variables: BTreeMap<String, String>,
    pub types: ContentTypes,
    pub date_created: i64,
    pub date_updated: i64,
}

/// The types of a template warbler can send; at least one is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentTypes {
    /// `twilio/text`: its `body`.
    pub text: Option<String>,
    /// `twilio/media`: an optional `body` and 1–10 media URLs.
    pub media: Option<MediaContent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaContent {
    pub body: Option<String>,
    pub media: Vec<String>,
}

/// What a send with a template carries: the rendered body and media URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub body: String,
    pub media: Vec<String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid(20001, message)
}

fn string_field(
    object: &Map<String, Value>,
    type_name: &str,
    field: &str,
) -> Result<Option<String>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{type_name}.{field} must be a string"))),
    }
}

/// The names of the fields that have a value (the SDKs send unset ones as null).
fn set_fields(fields: &Map<String, Value>) -> impl Iterator<Item = &String> {
    fields.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k)
}

impl ContentTypes {
    /// Parses a create request's `types`: only `twilio/text` and `twilio/media`, with the
    /// fields the spec gives them (400 / 20001 otherwise).
    pub fn parse(value: &Value) -> Result<ContentTypes> {
        let object = value
            .as_object()
            .ok_or_else(|| invalid("types must be an object of Content types"))?;
        let mut types = ContentTypes {
            text: None,
            media: None,
        };
        // twilio-python sends every type it knows, the unused ones as null.
        for (name, content) in object.iter().filter(|(_, c)| !c.is_null()) {
            let fields = content
                .as_object()
                .ok_or_else(|| invalid(format!("{name} must be an object")))?;
            match name.as_str() {
                TEXT_TYPE => {
                    if let Some(extra) = set_fields(fields).find(|k| *k != "body") {
                        return Err(invalid(format!("{TEXT_TYPE} has no field {extra}")));
                    }
                    let body = string_field(fields, name, "body")?
                        .filter(|b| !b.is_empty())
                        .ok_or_else(|| invalid(format!("{TEXT_TYPE}.body is required")))?;
                    types.text = Some(body);
                }
                MEDIA_TYPE => {
                    if let Some(extra) = set_fields(fields).find(|k| *k != "body" && *k != "media")
                    {
                        return Err(invalid(format!("{MEDIA_TYPE} has no field {extra}")));
                    }
                    let media: Vec<String> = match fields.get("media") {
                        Some(Value::Array(items)) => items
                            .iter()
                            .map(|item| {
                                item.as_str().map(str::to_string).ok_or_else(|| {
                                    invalid(format!("{MEDIA_TYPE}.media holds URLs (strings)"))
                                })
                            })
                            .collect::<Result<_>>()?,
                        _ => {
                            return Err(invalid(format!(
                                "{MEDIA_TYPE}.media is required: a list of URLs"
                            )))
                        }
                    };
                    if media.is_empty() || media.len() > crate::domain::message::MAX_MEDIA {
                        return Err(invalid(format!(
                            "{MEDIA_TYPE}.media holds 1 to {} URLs",
                            crate::domain::message::MAX_MEDIA
                        )));
                    }
                    types.media = Some(MediaContent {
                        body: string_field(fields, name, "body")?,
                        media,
                    });
                }
                other => {
                    return Err(invalid(format!(
                        "Content type {other} is not supported by warbler (SMS and MMS carry {TEXT_TYPE} and {MEDIA_TYPE})"
                    )))
                }
            }
        }
        if types.text.is_none() && types.media.is_none() {
            return Err(invalid(format!(
                "types must hold {TEXT_TYPE} or {MEDIA_TYPE}"
            )));
        }
        Ok(types)
    }

    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(body) = &self.text {
            object.insert(TEXT_TYPE.into(), json!({ "body": body }));
        }
        if let Some(media) = &self.media {
            let mut fields = json!({ "media": media.media });
            if let Some(body) = &media.body {
                fields["body"] = json!(body);
            }
            object.insert(MEDIA_TYPE.into(), fields);
        }
        Value::Object(object)
    }
}

/// Parses a template's default `variables`: an object of strings (numbers are taken as text).
pub fn parse_default_variables(value: Option<&Value>) -> Result<BTreeMap<String, String>> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(value) => variable_map(value).ok_or_else(|| {
            invalid(format!(
                "variables must be an object of at most {MAX_VARIABLES} names to strings"
            ))
        }),
    }
}

fn variable_map(value: &Value) -> Option<BTreeMap<String, String>> {
    let object = value.as_object()?;
    if object.len() > MAX_VARIABLES {
        return None;
    }
    object
        .iter()
        .map(|(name, value)| {
            if name.is_empty() || name.chars().count() > MAX_VARIABLE_NAME_CHARS {
                return None;
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((name.clone(), text))
        })
        .collect()
}

/// Twilio's error for `ContentVariables` that are not a JSON object of strings, or that leave
/// a placeholder without a value.
fn invalid_variables(detail: impl std::fmt::Display) -> Error {
    Error::invalid(
        21656,
        format!("The ContentVariables Parameter is invalid: {detail}"),
    )
}

/// Parses a send's `ContentVariables` (a JSON object such as `{"1":"Ana","2":"12:30"}`).
pub fn parse_content_variables(raw: &str) -> Result<BTreeMap<String, String>> {
    if raw.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let value: Value = serde_json::from_str(raw).map_err(|_| invalid_variables("not JSON"))?;
    variable_map(&value).ok_or_else(|| invalid_variables("not an object of names to strings"))
}

/// Replaces each `{{name}}` (spaces inside the braces allowed) with `values[name]`, else the
/// template default; text that is not a placeholder is kept as is.
fn fill(
    text: &str,
    supplied: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        let name = after[..close].trim();
        let is_placeholder = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if is_placeholder {
            let value = supplied
                .get(name)
                .or_else(|| defaults.get(name))
                .ok_or_else(|| {
                    invalid_variables(format!(
                        "no value for {{{{{name}}}}} and the template has no default"
                    ))
                })?;
            out.push_str(value);
        } else {
            out.push_str(&rest[open..open + 2 + close + 2]);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ContentTemplate {
    /// The body and media a send with this template carries: `twilio/media` when the template
    /// has it (an MMS), else `twilio/text`.
    pub fn render(&self, supplied: &BTreeMap<String, String>) -> Result<Rendered> {
        let defaults = &self.variables;
        if let Some(media) = &self.types.media {
            return Ok(Rendered {
                body: match &media.body {
                    Some(body) => fill(body, supplied, defaults)?,
                    None => String::new(),
                },
                media: media
                    .media
                    .iter()
                    .map(|url| fill(url, supplied, defaults))
                    .collect::<Result<_>>()?,
            });
        }
        let body = self.types.text.as_deref().unwrap_or_default();
        Ok(Rendered {
            body: fill(body, supplied, defaults)?,
            media: Vec::new(),
        })
    }
}

/// Checks a create request's `friendly_name` and `language`.
pub fn check_names(friendly_name: &str, language: &str) -> Result<()> {
    if friendly_name.chars().count() > MAX_FRIENDLY_NAME_CHARS {
        return Err(Error::invalid(
            21658,
            format!("friendly_name must be at most {MAX_FRIENDLY_NAME_CHARS} characters long"),
        ));
    }
    if language.is_empty() {
        return Err(Error::missing_parameter("language"));
    }
    if language.chars().count() > MAX_LANGUAGE_CHARS
        || !language
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::invalid_parameter("language", language));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(types: Value, defaults: Value) -> ContentTemplate {
        ContentTemplate {
            sid: "HX".into(),
            account_sid: "AC".into(),
            friendly_name: String::new(),
            language: "en".into(),
            variables: parse_default_variables(Some(&defaults)).unwrap(),
            types: ContentTypes::parse(&types).unwrap(),
            date_created: 0,
            date_updated: 0,
        }
    }

    fn vars(raw: &str) -> BTreeMap<String, String> {
        parse_content_variables(raw).unwrap()
    }

    #[test]
    fn numbered_and_named_placeholders_take_the_send_values_then_the_defaults() {
        let t = template(
            json!({"twilio/text": {"body": "Hi {{1}}, your {{ item }} ships {{2}}."}}),
            json!({"1": "there", "2": "today"}),
        );
        assert_eq!(
            t.render(&vars(r#"{"1":"Ana","item":"order 17"}"#)).unwrap(),
            Rendered {
                body: "Hi Ana, your order 17 ships today.".into(),
                media: vec![]
            }
        );
        let missing = t.render(&vars(r#"{"1":"Ana"}"#)).unwrap_err();
        assert_eq!((missing.code(), missing.http_status()), (21656, 400));
    }

    #[test]
    fn text_that_is_not_a_placeholder_is_kept() {
        let t = template(
            json!({"twilio/text": {"body": "{{ not a name }} {{x}} {{ unclosed"}}),
            json!({"x": "X"}),
        );
        assert_eq!(
            t.render(&BTreeMap::new()).unwrap().body,
            "{{ not a name }} X {{ unclosed"
        );
    }

    #[test]
    fn media_wins_over_text_and_its_urls_are_filled_too() {
        let t = template(
            json!({
                "twilio/text": {"body": "text only"},
                "twilio/media": {"body": "Ticket {{1}}", "media": ["https://x.example.com/{{1}}.png"]}
            }),
            json!({}),
        );
        assert_eq!(
            t.render(&vars(r#"{"1": 42}"#)).unwrap(),
            Rendered {
                body: "Ticket 42".into(),
                media: vec!["https://x.example.com/42.png".into()]
            }
        );
    }

    #[test]
    fn only_sms_and_mms_types_with_their_fields_are_accepted() {
        for bad in [
            json!({}),
            json!([]),
            json!({"twilio/location": {"latitude": 1, "longitude": 2}}),
            json!({"twilio/text": {}}),
            json!({"twilio/text": {"body": "x", "extra": 1}}),
            json!({"twilio/media": {"body": "x"}}),
            json!({"twilio/media": {"media": []}}),
            json!({"twilio/media": {"media": [1]}}),
        ] {
            assert_eq!(
                ContentTypes::parse(&bad).unwrap_err().code(),
                20001,
                "{bad}"
            );
        }
        let both =
            json!({"twilio/media": {"media": ["https://a/b.png"]}, "twilio/text": {"body": "x"}});
        assert_eq!(ContentTypes::parse(&both).unwrap().to_json(), both);
        // As twilio-python sends it: every type it knows, unused ones null.
        let from_python = json!({
            "twilio/text": {"body": "x"},
            "twilio/media": null,
            "twilio/location": null
        });
        assert_eq!(
            ContentTypes::parse(&from_python).unwrap().to_json(),
            json!({"twilio/text": {"body": "x"}})
        );
    }

    #[test]
    fn content_variables_must_be_an_object_of_strings() {
        for bad in ["[1]", "{\"1\": {}}", "nope", "{\"1\": null}"] {
            assert_eq!(
                parse_content_variables(bad).unwrap_err().code(),
                21656,
                "{bad}"
            );
        }
        assert!(parse_content_variables("").unwrap().is_empty());
    }
}
