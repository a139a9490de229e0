//! Opt-out keywords (STOP / START / HELP) and their auto-replies, as Twilio handles them on
//! long codes and toll-free numbers: the whole body, trimmed, compared without case.

use crate::error::{Error, Result};

/// What an inbound keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordKind {
    Stop,
    Start,
    Help,
}

impl KeywordKind {
    /// The `OptOutType` webhook parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            KeywordKind::Stop => "STOP",
            KeywordKind::Start => "START",
            KeywordKind::Help => "HELP",
        }
    }
}

pub const DEFAULT_STOP_KEYWORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
pub const DEFAULT_START_KEYWORDS: [&str; 3] = ["START", "YES", "UNSTOP"];
pub const DEFAULT_HELP_KEYWORDS: [&str; 2] = ["HELP", "INFO"];

pub const DEFAULT_STOP_REPLY: &str = "You have successfully been unsubscribed. You will not receive any more messages from this number. Reply START to resubscribe.";
pub const DEFAULT_START_REPLY: &str = "You have successfully been re-subscribed to messages from this number. Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.";
pub const DEFAULT_HELP_REPLY: &str = "Reply STOP to unsubscribe. Msg&Data Rates May Apply.";

/// A Messaging Service's Advanced Opt-Out: keywords added to Twilio's defaults (which can
/// never be removed) and custom replies. `None` replies use Twilio's default text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptOutSettings {
    pub stop_keywords: Vec<String>,
    pub start_keywords: Vec<String>,
    pub help_keywords: Vec<String>,
    pub stop_reply: Option<String>,
    pub start_reply: Option<String>,
    pub help_reply: Option<String>,
}

impl OptOutSettings {
    /// The keyword `body` is, if any.
    pub fn classify(&self, body: &str) -> Option<KeywordKind> {
        let word = body.trim();
        if word.is_empty() || word.chars().any(char::is_whitespace) {
            return None;
        }
        // Custom keywords are stored upper-cased (any script), so compare upper-cased.
        let upper = word.to_uppercase();
        let matches = |defaults: &[&str], custom: &[String]| {
            defaults.iter().any(|k| *k == upper) || custom.contains(&upper)
        };
        // Twilio's own keywords win over custom ones, STOP first.
        if matches(&DEFAULT_STOP_KEYWORDS, &[]) {
            Some(KeywordKind::Stop)
        } else if matches(&DEFAULT_START_KEYWORDS, &[]) {
            Some(KeywordKind::Start)
        } else if matches(&DEFAULT_HELP_KEYWORDS, &[]) {
            Some(KeywordKind::Help)
        } else if matches(&[], &self.stop_keywords) {
            Some(KeywordKind::Stop)
        } else if matches(&[], &self.start_keywords) {
            Some(KeywordKind::Start)
        } else if matches(&[], &self.help_keywords) {
            Some(KeywordKind::Help)
        } else {
            None
        }
    }

    /// The auto-reply for a keyword.
    pub fn reply(&self, kind: KeywordKind) -> &str {
        match kind {
            KeywordKind::Stop => self.stop_reply.as_deref().unwrap_or(DEFAULT_STOP_REPLY),
            KeywordKind::Start => self.start_reply.as_deref().unwrap_or(DEFAULT_START_REPLY),
            KeywordKind::Help => self.help_reply.as_deref().unwrap_or(DEFAULT_HELP_REPLY),
        }
    }
}

/// Parses a comma-separated keyword list: each a single word of letters and digits, at most
/// 50 of them (custom keywords are matched like Twilio's, whole body only).
pub fn parse_keywords(name: &str, raw: &str) -> Result<Vec<String>> {
    let mut keywords: Vec<String> = Vec::new();
    for part in raw.split(',') {
        let word = part.trim();
        if word.is_empty() {
            continue;
        }
        if word.len() > 64 || !word.chars().all(char::is_alphanumeric) {
            return Err(Error::invalid_parameter(name, raw));
        }
        let upper = word.to_uppercase();
        if !keywords.contains(&upper) {
            keywords.push(upper);
        }
    }
    if keywords.len() > 50 {
        return Err(Error::invalid_parameter(name, raw));
    }
    Ok(keywords)
}

/// Checks a custom reply: 1 to 320 characters, as Twilio's campaign fields.
pub fn check_reply(name: &str, raw: &str) -> Result<Option<String>> {
    match raw.chars().count() {
        0 => Ok(None),
        1..=320 => Ok(Some(raw.to_string())),
        _ => Err(Error::invalid_parameter(name, raw)),
    }
}

/// Where a STOP applies. `account` is warbler's default; `service` follows Twilio's
/// Messaging Service behaviour (the pool, or the single number outside any service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptOutScope {
    #[default]
    Account,
    Service,
}

/// The scope key stored for a STOP received by `sender`, in `service` if any.
pub fn scope_key(scope: OptOutScope, sender: &str, service_sid: Option<&str>) -> String {
    match (scope, service_sid) {
        (OptOutScope::Account, _) => "account".to_string(),
        (OptOutScope::Service, Some(service)) => service.to_string(),
        (OptOutScope::Service, None) => sender.to_string(),
    }
}

/// Whether a stored opt-out (its `scope`, and the number that received the STOP) blocks a
/// message from `sender` (through `service_sid`). The pair the recipient texted STOP to is
/// always blocked, whatever the scope.
pub fn blocks(
    scope: &str,
    stopped_sender: Option<&str>,
    sender: Option<&str>,
    service_sid: Option<&str>,
) -> bool {
    scope == "account"
        || Some(scope) == sender
        || Some(scope) == service_sid
        || (sender.is_some() && stopped_sender == sender)
}

/// Stored opt-outs by (account, recipient): the scope of each, and the number that received
/// its STOP. Built from a lookup, asked per message with `blocks_message`.
#[derive(Debug, Default)]
pub struct OptOutsByRecipient(std::collections::HashMap<(String, String), Vec<StoredOptOut>>);

/// An opt-out's scope and the number that received its STOP.
type StoredOptOut = (String, Option<String>);

impl OptOutsByRecipient {
    pub fn add(
        &mut self,
        account_sid: String,
        recipient: String,
        scope: String,
        stopped_sender: Option<String>,
    ) {
        self.0
            .entry((account_sid, recipient))
            .or_default()
            .push((scope, stopped_sender));
    }

    /// Whether any opt-out of `recipient` in `account_sid` `blocks` a message from `sender`
    /// (through `service_sid`).
    pub fn blocks_message(
        &self,
        account_sid: &str,
        recipient: &str,
        sender: Option<&str>,
        service_sid: Option<&str>,
    ) -> bool {
        self.0
            .get(&(account_sid.to_string(), recipient.to_string()))
            .is_some_and(|scopes| {
                scopes
                    .iter()
                    .any(|(scope, stopped)| blocks(scope, stopped.as_deref(), sender, service_sid))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_body_keywords_match_without_case() {
        let defaults = OptOutSettings::default();
        assert_eq!(defaults.classify("  stop "), Some(KeywordKind::Stop));
        assert_eq!(defaults.classify("Unsubscribe"), Some(KeywordKind::Stop));
        assert_eq!(defaults.classify("unstop"), Some(KeywordKind::Start));
        assert_eq!(defaults.classify("info"), Some(KeywordKind::Help));
        assert_eq!(defaults.classify("STOP PLEASE"), None);
        assert_eq!(defaults.classify("stopp"), None);
        assert_eq!(defaults.classify(""), None);
    }

    #[test]
    fn custom_keywords_add_to_the_defaults() {
        let settings = OptOutSettings {
            stop_keywords: parse_keywords("OptOutKeywords", "arret, Halt").unwrap(),
            stop_reply: Some("Bye".into()),
            ..Default::default()
        };
        assert_eq!(settings.classify("ARRET"), Some(KeywordKind::Stop));
        assert_eq!(settings.classify("halt"), Some(KeywordKind::Stop));
        assert_eq!(settings.classify("stop"), Some(KeywordKind::Stop));
        assert_eq!(settings.reply(KeywordKind::Stop), "Bye");
        assert_eq!(settings.reply(KeywordKind::Help), DEFAULT_HELP_REPLY);
    }

    #[test]
    fn keyword_lists_are_single_words() {
        assert!(parse_keywords("K", "two words").is_err());
        assert!(parse_keywords("K", "a-b").is_err());
        assert_eq!(parse_keywords("K", " x, X ,y").unwrap(), vec!["X", "Y"]);
    }

    #[test]
    fn scopes_block_what_they_name() {
        assert!(blocks("account", None, Some("+15005550006"), None));
        assert!(blocks("MGx", None, Some("+1"), Some("MGx")));
        assert!(!blocks("MGx", None, Some("+1"), Some("MGy")));
        assert!(blocks("+1", None, Some("+1"), None));
        assert!(!blocks("+1", None, Some("+2"), None));
        // A STOP to a pool number blocks that number outside the service too.
        assert!(blocks("MGx", Some("+1"), Some("+1"), None));
        assert!(!blocks("MGx", Some("+1"), None, None));
        assert_eq!(scope_key(OptOutScope::Service, "+1", None), "+1");
        assert_eq!(scope_key(OptOutScope::Service, "+1", Some("MG")), "MG");
        assert_eq!(scope_key(OptOutScope::Account, "+1", Some("MG")), "account");
    }
}
