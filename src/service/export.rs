//! The message log export: an account's messages (or a main account's and its
//! subaccounts'), oldest first, as CSV or JSON lines, read a page at a time so memory stays
//! flat however many there are.

use super::{App, Operation, Principal};
use crate::domain::message::Message;
use crate::domain::time::iso8601;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(raw: &str) -> Option<ExportFormat> {
        match raw {
            "csv" => Some(ExportFormat::Csv),
            "jsonl" => Some(ExportFormat::Jsonl),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }
}

const HEADER: [&str; 16] = [
    "sid",
    "account_sid",
    "messaging_service_sid",
    "direction",
    "from",
    "to",
    "body",
    "status",
    "error_code",
    "num_segments",
    "num_media",
    "price",
    "price_unit",
    "date_created",
    "date_sent",
    "date_updated",
];

fn fields(m: &Message) -> [String; 16] {
    [
        m.sid.clone(),
        m.account_sid.clone(),
        m.messaging_service_sid.clone().unwrap_or_default(),
        m.direction.as_str().to_string(),
        m.from.clone().unwrap_or_default(),
        m.to.clone(),
        m.body.clone(),
        m.status.as_str().to_string(),
        m.error_code.map(|c| c.to_string()).unwrap_or_default(),
        m.num_segments.to_string(),
        m.num_media.to_string(),
        m.price.clone().unwrap_or_default(),
        m.price_unit.clone(),
        iso8601(m.date_created),
        m.date_sent.map(iso8601).unwrap_or_default(),
        iso8601(m.date_updated),
    ]
}

/// Writes rows in one format.
pub struct ExportWriter {
    format: ExportFormat,
}

impl ExportWriter {
    pub fn new(format: ExportFormat) -> ExportWriter {
        ExportWriter { format }
    }

    /// The first bytes of the export (the CSV header).
    pub fn header(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Csv => csv_line(&HEADER.map(str::to_string)),
            ExportFormat::Jsonl => Vec::new(),
        }
    }

    /// A page of messages, formatted.
    pub fn rows(&self, messages: &[Message]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            let values = fields(m);
            match self.format {
                ExportFormat::Csv => out.extend(csv_line(&values)),
                ExportFormat::Jsonl => {
                    let object: serde_json::Map<String, serde_json::Value> = HEADER
                        .iter()
                        .zip(values)
                        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                        .collect();
                    out.extend(serde_json::Value::Object(object).to_string().into_bytes());
                    out.push(b'\n');
                }
            }
        }
        out
    }
}

fn csv_line(values: &[String]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail; an empty line would show up in the output if it did.
    let _ = writer.write_record(values);
    writer.into_inner().unwrap_or_default()
}

/// Where an export is: the accounts still to read, and the keyset position in the current one.
pub struct ExportCursor {
    accounts: Vec<String>,
    since: i64,
    until: i64,
    after: Option<(i64, String)>,
}

/// Parses an export bound: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time; microseconds.
pub fn parse_bound(name: &str, raw: &str) -> Result<i64> {
    let bad = || Error::invalid_parameter(name, raw);
    if raw.len() == 10 {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(raw, &format).map_err(|_| bad())?;
        return Ok(date.midnight().assume_utc().unix_timestamp() * 1_000_000);
    }
    let at = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())?;
    Ok((at.unix_timestamp_nanos() / 1000) as i64)
}

/// Messages read per page.
const PAGE: i64 = 1000;

impl App {
    /// Starts an export of `account_sid` (with its subaccounts when it is a main account and
    /// `include_subaccounts`), times in microseconds.
    pub async fn start_export(
        &self,
        account_sid: &str,
        include_subaccounts: bool,
        since: i64,
        until: i64,
    ) -> Result<ExportCursor> {
        let account = self
            .store
            .account(account_sid)
            .await?
            .ok_or_else(|| Error::invalid(20404, format!("No account {account_sid}")))?;
        let mut accounts = vec![account.sid.clone()];
        if account.is_main() && include_subaccounts {
            accounts.extend(self.store.subaccount_sids(&account.sid).await?);
        }
        accounts.reverse();
        Ok(ExportCursor {
            accounts,
            since,
            until,
            after: None,
        })
    }

    /// `ExportMessages` over HTTP: the operator (main account's auth token), within its family.
    pub async fn start_export_as(
        &self,
        principal: &Principal,
        account_sid: &str,
        include_subaccounts: bool,
        since: i64,
        until: i64,
    ) -> Result<ExportCursor> {
        super::check_credential(principal, Operation::ExportMessages)?;
        let account = self
            .store
            .account(account_sid)
            .await?
            .filter(|a| principal.account.is_self_or_parent_of(a))
            .ok_or_else(|| {
                Error::invalid(
                    21473,
                    format!("AccountSid {account_sid} is not in this main account's family"),
                )
            })?;
        self.start_export(&account.sid, include_subaccounts, since, until)
            .await
    }

    /// The next page of the export, or `None` when it is done.
    pub async fn export_next(&self, cursor: &mut ExportCursor) -> Result<Option<Vec<Message>>> {
        loop {
            let Some(account) = cursor.accounts.last().cloned() else {
                return Ok(None);
            };
            let page = self
                .store
                .export_page(
                    &account,
                    cursor.since,
                    cursor.until,
                    cursor.after.take(),
                    PAGE,
                )
                .await?;
            match page.last() {
                Some(last) => {
                    cursor.after = Some((last.date_created, last.sid.clone()));
                    return Ok(Some(page));
                }
                None => {
                    cursor.accounts.pop();
                }
            }
        }
    }
}
