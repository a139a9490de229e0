//! The web console's use cases: a login that opens a session, the session's principal on each
//! request, and the numbers behind the overview and the message log. Who may see what is
//! decided by `App::authenticate` and `App::authorize`, exactly as for the API.

use super::{check_credential, App, Credential, Operation, Principal};
use crate::domain::account::Account;
use crate::domain::credential::secrets_match;
use crate::domain::message::{Message, MessageStatus};
use crate::domain::paging::PageRequest;
use crate::domain::sid::random_hex32;
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::accounts::AccountFilter;
use crate::store::console::{LogFilter, LogPage, SessionRow};
use sha2::{Digest, Sha256};

/// How long a console session lasts after its login (microseconds): a working day.
pub const SESSION_LIFETIME: i64 = 8 * 3600 * 1_000_000;
const DAY: i64 = 24 * 3600 * 1_000_000;

/// A logged-in console user.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub principal: Principal,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// A session just opened, with the token its cookie carries (never stored as is).
pub struct NewSession {
    pub token: String,
    pub session: ConsoleSession,
}

/// One account's row of the overview.
#[derive(Debug, Clone)]
pub struct AccountStats {
    pub account: Account,
    /// Final statuses reached since midnight UTC, by status.
    pub today: Vec<(String, i64)>,
    /// Final statuses reached in the last 7 days, by status.
    pub week: Vec<(String, i64)>,
    /// The week's most frequent error codes, with their counts.
    pub top_errors: Vec<(i64, i64)>,
    /// The `totalprice` usage of this month, as Twilio prints it.
    pub spend_this_month: String,
}

impl AccountStats {
    pub fn week_total(&self) -> i64 {
        self.week.iter().map(|(_, n)| n).sum()
    }

    /// Delivered among the week's messages that reached a final outbound status; `None` when
    /// none did.
    pub fn delivery_rate(&self) -> Option<f64> {
        let count = |status: &str| {
            self.week
                .iter()
                .filter(|(s, _)| s == status)
                .map(|(_, n)| *n)
                .sum::<i64>()
        };
        let delivered = count("delivered");
        let finished = delivered + count("undelivered") + count("failed");
        (finished > 0).then(|| delivered as f64 / finished as f64)
    }
}

/// What the overview's charts draw, over the last `since`.
#[derive(Debug, Clone, Default)]
pub struct ChartData {
    pub since: i64,
    pub until: i64,
    /// (hour start, status, messages)
    pub hourly_by_status: Vec<(i64, String, i64)>,
    /// (hour start, error code, messages)
    pub hourly_by_error: Vec<(i64, i64, i64)>,
    /// Delivered messages by accepted → delivered latency bucket
    /// (`store::console::LATENCY_BUCKETS`).
    pub latency_histogram: Vec<(i64, i64)>,
}

/// A message's page: the message, its status timeline, its status callback attempts.
#[derive(Debug, Clone)]
pub struct ConsoleMessage {
    pub message: Message,
    pub events: Vec<(MessageStatus, Option<i64>, i64)>,
    pub callbacks: Vec<crate::store::console::CallbackAttempt>,
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

impl App {
    /// Checks a login form's credentials (an account SID and auth token, or an API key SID
    /// and secret, optionally with the key's account SID) and opens a session. Failures are
    /// all `Unauthenticated`, as for the API.
    pub async fn console_login(
        &self,
        username: &str,
        password: &str,
        account_sid: Option<&str>,
    ) -> Result<NewSession> {
        let principal = self.authenticate(username, password).await?;
        // Test credentials touch nothing real: there is nothing for them to see.
        if principal.test_sid().is_some() {
            return Err(Error::Unauthenticated);
        }
        if let Some(sid) = account_sid.filter(|sid| !sid.is_empty()) {
            if sid != principal.account.sid {
                return Err(Error::Unauthenticated);
            }
        }
        let now = now_micros();
        let token = format!("{}{}", random_hex32(), random_hex32());
        let row = SessionRow {
            account_sid: principal.account.sid.clone(),
            key_sid: match &principal.credential {
                Credential::ApiKey { sid } => Some(sid.clone()),
                _ => None,
            },
            token_hash: match principal.credential {
                Credential::AuthToken => sha256_hex(&principal.account.auth_token),
                _ => String::new(),
            },
            csrf_token: format!("{}{}", random_hex32(), random_hex32()),
            expires_at: now + SESSION_LIFETIME,
        };
        // Housekeeping at login: the index on expiry finds the rows.
        if let Err(err) = self.store.expire_console_sessions(now).await {
            tracing::warn!(%err, "expiring console sessions failed");
        }
        self.store
            .insert_console_session(&sha256_hex(&token), &row, now)
            .await?;
        Ok(NewSession {
            token,
            session: ConsoleSession {
                principal,
                csrf_token: row.csrf_token,
                expires_at: row.expires_at,
            },
        })
    }

    /// The session a cookie's token names, checked again on every request: the account (and
    /// its parent) still active, the API key still there, the auth token unchanged.
    pub async fn console_session(&self, token: &str) -> Result<Option<ConsoleSession>> {
        let now = now_micros();
        let Some(row) = self.store.console_session(&sha256_hex(token), now).await? else {
            return Ok(None);
        };
        let Some(account) = self.store.account(&row.account_sid).await? else {
            return Ok(None);
        };
        let credential = match &row.key_sid {
            Some(key_sid) => match self.store.key(key_sid).await? {
                Some(key) if key.account_sid == account.sid => Credential::ApiKey {
                    sid: key_sid.clone(),
                },
                _ => return Ok(None),
            },
            None => {
                if !secrets_match(&row.token_hash, &sha256_hex(&account.auth_token)) {
                    return Ok(None);
                }
                Credential::AuthToken
            }
        };
        match self.ensure_active(&account).await {
            Ok(()) => {}
            Err(Error::Unauthenticated) => return Ok(None),
            Err(other) => return Err(other),
        }
        Ok(Some(ConsoleSession {
            principal: Principal {
                account,
                credential,
            },
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
        }))
    }

    pub async fn console_logout(&self, token: &str) -> Result<()> {
        self.store.delete_console_session(&sha256_hex(token)).await
    }

    /// The accounts whose pages `principal` may open: its own and, with a main account's auth
    /// token, its subaccounts (`ListAccount`'s answer).
    pub async fn console_accounts(&self, principal: &Principal) -> Result<Vec<Account>> {
        if check_credential(principal, Operation::ListAccount).is_err() {
            return Ok(vec![principal.account.clone()]);
        }
        let page = PageRequest::parse(None, Some("1000"), None)?;
        self.list_accounts(principal, &AccountFilter::default(), &page)
            .await
    }

    /// `principal` acting on `account_sid`'s resources, as far as the API lets it: its own
    /// account, or a subaccount with the main account's auth token. For the resources whose
    /// API routes name no account (Messaging Services), which act on the caller's own.
    pub async fn console_act_as(
        &self,
        principal: &Principal,
        account_sid: &str,
        operation: Operation,
        path: &str,
    ) -> Result<Principal> {
        let account = self
            .authorize(principal, account_sid, operation, path)
            .await?;
        Ok(Principal {
            account,
            credential: principal.credential.clone(),
        })
    }

    /// The overview of `account_sid`: a row per account it shows (a main account's own
    /// overview shows every account `console_accounts` lists; any other shows that account,
    /// if `authorize` lets the caller read its messages) and the charts of the last `hours`,
    /// added up over those accounts. The counters are read for all accounts at once.
    pub async fn console_overview(
        &self,
        principal: &Principal,
        account_sid: &str,
        hours: i64,
        path: &str,
    ) -> Result<(Vec<AccountStats>, ChartData)> {
        let accounts = if account_sid == principal.account.sid && principal.account.is_main() {
            check_credential(principal, Operation::ListMessage)?;
            self.console_accounts(principal).await?
        } else {
            vec![
                self.authorize(principal, account_sid, Operation::ListMessage, path)
                    .await?,
            ]
        };
        let sids: Vec<String> = accounts.iter().map(|a| a.sid.clone()).collect();
        let now = now_micros();
        let hour = crate::store::console::HOUR;
        let midnight = now - now.rem_euclid(DAY);
        let week_ago = now - now.rem_euclid(hour) - 7 * DAY;
        let today = self.store.outcomes_since(&sids, midnight).await?;
        let week = self.store.outcomes_since(&sids, week_ago).await?;
        let query = super::usage::UsageQuery {
            category: Some("totalprice"),
            start_date: None,
            end_date: None,
            include_subaccounts: Some(false),
        };
        let mut rows = Vec::with_capacity(accounts.len());
        for account in accounts {
            let by_status = |outcomes: &[(String, String, i64, i64)]| {
                let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
                for (_, status, _, n) in outcomes.iter().filter(|o| o.0 == account.sid) {
                    *counts.entry(status.clone()).or_default() += n;
                }
                counts.into_iter().collect::<Vec<_>>()
            };
            let mut errors: std::collections::BTreeMap<i64, i64> = Default::default();
            for (_, _, code, n) in week.iter().filter(|o| o.0 == account.sid && o.2 != 0) {
                *errors.entry(*code).or_default() += n;
            }
            let mut top_errors: Vec<(i64, i64)> = errors.into_iter().collect();
            top_errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top_errors.truncate(3);
            let spend = self
                .usage_records(
                    principal,
                    &account.sid,
                    crate::domain::usage::Period::ThisMonth,
                    &query,
                    path,
                )
                .await?;
            rows.push(AccountStats {
                today: by_status(&today),
                week: by_status(&week),
                top_errors,
                spend_this_month: spend
                    .first()
                    .map(|record| record.usage_text())
                    .unwrap_or_else(|| "0".into()),
                account,
            });
        }
        let since = now - now.rem_euclid(hour) - (hours - 1) * hour;
        let mut hourly_by_status = Vec::new();
        let mut hourly_by_error = Vec::new();
        for (at, status, code, n) in self.store.hourly_outcomes(&sids, since).await? {
            if code != 0 {
                hourly_by_error.push((at, code, n));
            }
            hourly_by_status.push((at, status, n));
        }
        let charts = ChartData {
            since,
            until: now,
            hourly_by_status,
            hourly_by_error,
            latency_histogram: self.store.latency_histogram(&sids, since).await?,
        };
        Ok((rows, charts))
    }

    /// A page of the message log of `account_sid`, newest first: `limit` rows after the
    /// keyset position `after`.
    pub async fn console_messages(
        &self,
        principal: &Principal,
        account_sid: &str,
        filter: &LogFilter,
        after: Option<(i64, String)>,
        limit: i64,
        path: &str,
    ) -> Result<LogPage> {
        let account = self
            .authorize(principal, account_sid, Operation::ListMessage, path)
            .await?;
        self.store
            .message_log(&account.sid, filter, after, limit.clamp(1, 1000))
            .await
    }

    /// A message with every status it went through and every status callback attempt.
    pub async fn console_message(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<ConsoleMessage> {
        let message = self
            .fetch_message(principal, account_sid, sid, path)
            .await?;
        let events = self.store.message_events(&message.sid).await?;
        let callbacks = self
            .store
            .callback_attempts(&message.account_sid, &message.sid)
            .await?;
        Ok(ConsoleMessage {
            message,
            events,
            callbacks,
        })
    }
}
