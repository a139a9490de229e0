//! Alarms (a warbler extension): CRUD, and the evaluator that moves each between `ok` and
//! `firing` once per crossing, notifying through the durable webhook outbox and by e-mail.

use super::{App, Operation, Principal};
use crate::domain::account::Account;
use crate::domain::alarm::{
    bucket_of, format_threshold, parse_threshold, valid_email, Alarm, AlarmFiring, AlarmState,
    ThresholdType, WindowCounts, BUCKET, MAX_EMAILS, MAX_WINDOW_MINUTES, MIN_WINDOW_MINUTES,
};
use crate::domain::number::{validate_method, validate_url};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::{now_micros, rfc2822};
use crate::error::{Error, Result};
use crate::store::alarms::CountScope;

/// Alarms one account may have.
pub const MAX_ALARMS_PER_ACCOUNT: i64 = 100;

/// How often the evaluator looks at the alarms (microseconds).
pub const EVALUATION_INTERVAL: i64 = 10_000_000;

/// How long a node holds a firing's e-mail while sending it (above the SMTP timeout).
const EMAIL_LEASE: i64 = 60_000_000;
/// Attempts at an e-mail before it is marked failed; the wait doubles from `EMAIL_RETRY_BASE`.
const EMAIL_ATTEMPTS: i64 = 5;
const EMAIL_RETRY_BASE: i64 = 30_000_000;

/// A `CreateAlarm` or `UpdateAlarm` request as sent (`None`: not given).
#[derive(Debug, Default)]
pub struct AlarmRequest<'a> {
    pub friendly_name: Option<&'a str>,
    /// A Twilio error code, or `any`.
    pub error_code: Option<&'a str>,
    pub scope_sid: Option<&'a str>,
    pub threshold: Option<&'a str>,
    pub threshold_type: Option<&'a str>,
    pub window_minutes: Option<&'a str>,
    pub webhook_url: Option<&'a str>,
    pub webhook_method: Option<&'a str>,
    /// `Email` parameters (repeated); one empty value removes them all.
    pub emails: Option<Vec<&'a str>>,
}

impl App {
    /// `CreateAlarm`: on the caller's account; `ScopeSid` may name one of its subaccounts or
    /// a Messaging Service of either.
    pub async fn create_alarm(
        &self,
        principal: &Principal,
        request: &AlarmRequest<'_>,
        path: &str,
    ) -> Result<Alarm> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::CreateAlarm,
                path,
            )
            .await?;
        let now = now_micros();
        let blank = Alarm {
            sid: sid::generate(SidKind::Alarm),
            account_sid: account.sid.clone(),
            friendly_name: None,
            error_code: None,
            scope_sid: account.sid.clone(),
            threshold_type: ThresholdType::Count,
            threshold: 0.0,
            window_minutes: 0,
            webhook_url: None,
            webhook_method: "POST".into(),
            emails: Vec::new(),
            state: AlarmState::Ok,
            date_state_changed: None,
            date_created: now,
            date_updated: now,
        };
        if request.threshold.is_none_or(str::is_empty) {
            return Err(Error::missing_parameter("Threshold"));
        }
        if request.window_minutes.is_none_or(str::is_empty) {
            return Err(Error::missing_parameter("WindowMinutes"));
        }
        let alarm = self.apply_alarm_request(&account, blank, request).await?;
        if self.store.count_alarms(&account.sid).await? >= MAX_ALARMS_PER_ACCOUNT {
            return Err(Error::invalid(
                20001,
                format!("An account may have at most {MAX_ALARMS_PER_ACCOUNT} alarms"),
            ));
        }
        self.store.insert_alarm(&alarm).await?;
        Ok(alarm)
    }

    /// The alarm with `request`'s changes, each checked.
    async fn apply_alarm_request(
        &self,
        account: &Account,
        mut alarm: Alarm,
        request: &AlarmRequest<'_>,
    ) -> Result<Alarm> {
        if let Some(name) = request.friendly_name {
            if name.chars().count() > 64 {
                return Err(Error::invalid_parameter("FriendlyName", name));
            }
            alarm.friendly_name = (!name.is_empty()).then(|| name.to_string());
        }
        if let Some(raw) = request.error_code {
            alarm.error_code = match raw {
                "" | "any" => None,
                code => Some(
                    code.parse::<i64>()
                        .ok()
                        .filter(|c| (10_000..=99_999).contains(c))
                        .ok_or_else(|| Error::invalid_parameter("ErrorCode", raw))?,
                ),
            };
        }
        if let Some(raw) = request.scope_sid.filter(|s| !s.is_empty()) {
            self.check_alarm_scope(account, raw).await?;
            alarm.scope_sid = raw.to_string();
        }
        if let Some(raw) = request.threshold_type.filter(|s| !s.is_empty()) {
            alarm.threshold_type = ThresholdType::parse(raw)
                .ok_or_else(|| Error::invalid_parameter("ThresholdType", raw))?;
        }
        match request.threshold.filter(|s| !s.is_empty()) {
            Some(raw) => {
                alarm.threshold = parse_threshold(alarm.threshold_type, raw)
                    .ok_or_else(|| Error::invalid_parameter("Threshold", raw))?;
            }
            // A changed type must still fit the threshold kept.
            None if request.threshold_type.is_some() => {
                parse_threshold(alarm.threshold_type, &format_threshold(alarm.threshold))
                    .ok_or_else(|| Error::missing_parameter("Threshold"))?;
            }
            None => {}
        }
        if let Some(raw) = request.window_minutes.filter(|s| !s.is_empty()) {
            alarm.window_minutes = raw
                .parse::<i64>()
                .ok()
                .filter(|m| (MIN_WINDOW_MINUTES..=MAX_WINDOW_MINUTES).contains(m))
                .ok_or_else(|| Error::invalid_parameter("WindowMinutes", raw))?;
        }
        if let Some(raw) = request.webhook_url {
            alarm.webhook_url = validate_url("WebhookUrl", raw)?;
        }
        if let Some(raw) = request.webhook_method {
            alarm.webhook_method = validate_method("WebhookMethod", raw)?;
        }
        if let Some(emails) = &request.emails {
            let emails: Vec<String> = emails
                .iter()
                .filter(|e| !e.is_empty())
                .map(|e| e.to_string())
                .collect();
            if emails.len() > MAX_EMAILS {
                return Err(Error::invalid(
                    20001,
                    format!("An alarm may notify at most {MAX_EMAILS} e-mail addresses"),
                ));
            }
            if let Some(bad) = emails.iter().find(|e| !valid_email(e)) {
                return Err(Error::invalid_parameter("Email", bad));
            }
            if !emails.is_empty() && self.settings.mailer.is_none() {
                return Err(Error::invalid(
                    20001,
                    "E-mail notifications need the operator to configure smtp_url",
                ));
            }
            alarm.emails = emails;
        }
        Ok(alarm)
    }

    /// A scope must be the account, one of its subaccounts, or a Messaging Service of either.
    async fn check_alarm_scope(&self, account: &Account, scope: &str) -> Result<()> {
        let owner = if sid::is_valid(SidKind::Account, scope) {
            Some(scope.to_string())
        } else if sid::is_valid(SidKind::MessagingService, scope) {
            self.store.service_owner(scope).await?
        } else {
            None
        };
        let allowed = match owner {
            Some(owner) if owner == account.sid => true,
            Some(owner) => self
                .store
                .account(&owner)
                .await?
                .is_some_and(|o| o.owner_account_sid.as_deref() == Some(account.sid.as_str())),
            None => false,
        };
        if !allowed {
            return Err(Error::invalid_parameter("ScopeSid", scope));
        }
        Ok(())
    }

    /// `FetchAlarm`.
    pub async fn fetch_alarm(&self, principal: &Principal, sid: &str, path: &str) -> Result<Alarm> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::FetchAlarm,
                path,
            )
            .await?;
        self.store
            .alarm(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `ListAlarm`.
    pub async fn list_alarms(
        &self,
        principal: &Principal,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<Alarm>> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::ListAlarm,
                path,
            )
            .await?;
        self.store.list_alarms(&account.sid, page).await
    }

    /// `UpdateAlarm`: any of the create parameters; the state is kept (the next evaluation
    /// applies the new rule).
    pub async fn update_alarm(
        &self,
        principal: &Principal,
        sid: &str,
        request: &AlarmRequest<'_>,
        path: &str,
    ) -> Result<Alarm> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::UpdateAlarm,
                path,
            )
            .await?;
        let current = self
            .store
            .alarm(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        let mut alarm = self.apply_alarm_request(&account, current, request).await?;
        alarm.date_updated = now_micros();
        if !self.store.update_alarm(&alarm).await? {
            return Err(Error::not_found(path));
        }
        Ok(alarm)
    }

    /// `DeleteAlarm` (with its firings).
    pub async fn delete_alarm(&self, principal: &Principal, sid: &str, path: &str) -> Result<()> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::DeleteAlarm,
                path,
            )
            .await?;
        if !self.store.delete_alarm(&account.sid, sid).await? {
            return Err(Error::not_found(path));
        }
        Ok(())
    }

    /// `ListAlarmFiring`: an alarm's firings and clearings, oldest first.
    pub async fn list_alarm_firings(
        &self,
        principal: &Principal,
        alarm_sid: &str,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<AlarmFiring>> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::ListAlarmFiring,
                path,
            )
            .await?;
        if self.store.alarm(&account.sid, alarm_sid).await?.is_none() {
            return Err(Error::not_found(path));
        }
        self.store.list_alarm_firings(alarm_sid, page).await
    }

    /// The counts of `alarm`'s window ending at `now`: the current minute and the
    /// `window_minutes - 1` before it.
    pub async fn alarm_window_counts(&self, alarm: &Alarm, now: i64) -> Result<WindowCounts> {
        let scope = if sid::is_valid(SidKind::MessagingService, &alarm.scope_sid) {
            CountScope::Service(alarm.scope_sid.clone())
        } else {
            let mut accounts = vec![alarm.scope_sid.clone()];
            // A main account's alarm on itself watches its subaccounts too.
            if alarm.scope_sid == alarm.account_sid {
                if let Some(account) = self.store.account(&alarm.account_sid).await? {
                    if account.is_main() {
                        accounts.extend(self.store.subaccount_sids(&account.sid).await?);
                    }
                }
            }
            CountScope::Accounts(accounts)
        };
        let since = bucket_of(now) - (alarm.window_minutes - 1) * BUCKET;
        let mut counts = WindowCounts::default();
        for (code, n) in self.store.outcome_counts(&scope, since).await? {
            counts.messages += n;
            if alarm.matches(code) {
                counts.errors += n;
            }
        }
        Ok(counts)
    }

    /// Runs `evaluate_alarms` when `EVALUATION_INTERVAL` has passed since the last run.
    pub async fn evaluate_alarms_if_due(&self, now: i64) {
        use std::sync::atomic::Ordering;
        let last = self.alarms_evaluated_at.load(Ordering::Relaxed);
        if now - last < EVALUATION_INTERVAL {
            return;
        }
        self.alarms_evaluated_at.store(now, Ordering::Relaxed);
        if let Err(err) = self.evaluate_alarms(now).await {
            tracing::error!(%err, "alarm evaluation failed");
        }
        // The e-mails go on beside the webhooks, which a slow relay must not hold up.
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(err) = app.send_alarm_emails(now_micros()).await {
                tracing::error!(%err, "sending alarm e-mails failed");
            }
        });
    }

    /// Moves each alarm whose window calls for it to `firing` or back to `ok`, once per
    /// crossing (a conditional update: with several nodes evaluating, one records it).
    /// Returns how many changed state.
    pub async fn evaluate_alarms(&self, now: i64) -> Result<usize> {
        let mut changed = 0;
        let mut after = String::new();
        loop {
            let batch = self.store.alarms_after(&after, 200).await?;
            let Some(last) = batch.last() else { break };
            after = last.sid.clone();
            for alarm in &batch {
                let counts = match self.alarm_window_counts(alarm, now).await {
                    Ok(counts) => counts,
                    Err(err) => {
                        tracing::error!(%err, alarm = %alarm.sid, "alarm not evaluated");
                        continue;
                    }
                };
                let state = alarm.state_for(counts);
                if state == alarm.state {
                    continue;
                }
                let firing = AlarmFiring {
                    sid: sid::generate(SidKind::AlarmFiring),
                    alarm_sid: alarm.sid.clone(),
                    account_sid: alarm.account_sid.clone(),
                    state: match state {
                        AlarmState::Firing => "firing",
                        AlarmState::Ok => "cleared",
                    }
                    .to_string(),
                    counts,
                    value: format_value(alarm.value(counts)),
                    email_status: if alarm.emails.is_empty() {
                        "none"
                    } else {
                        "pending"
                    }
                    .to_string(),
                    email_attempts: 0,
                    email_error: None,
                    date_created: now,
                };
                let payload = alarm_form(alarm, &firing);
                match self
                    .store
                    .change_alarm_state(alarm, state, &firing, &payload, now)
                    .await
                {
                    Ok(true) => {
                        changed += 1;
                        metrics::counter!(crate::telemetry::ALARM_FIRINGS, "state" => firing.state.clone())
                            .increment(1);
                        tracing::warn!(alarm = %alarm.sid, account = %alarm.account_sid, state = %firing.state, value = %firing.value, "alarm");
                    }
                    Ok(false) => {}
                    Err(err) => tracing::error!(%err, alarm = %alarm.sid, "alarm not recorded"),
                }
            }
        }
        if changed > 0 {
            self.webhook_work.notify_one();
        }
        Ok(changed)
    }

    /// Sends the alarm e-mails due at `now`, each claimed by one node; a failure is tried
    /// again later, `EMAIL_ATTEMPTS` times in all. Returns how many were sent.
    pub async fn send_alarm_emails(&self, now: i64) -> Result<usize> {
        let Some(mailer) = self.settings.mailer.clone() else {
            return Ok(0);
        };
        let mut sent = 0;
        for (firing, alarm) in self.store.claim_alarm_emails(now, EMAIL_LEASE, 20).await? {
            let (subject, body) = alarm_mail(&alarm, &firing);
            let attempts = firing.email_attempts + 1;
            match mailer.send(&alarm.emails, &subject, &body).await {
                Ok(()) => {
                    sent += 1;
                    self.store
                        .settle_alarm_email(&firing.sid, "sent", None, None)
                        .await?;
                }
                Err(err) if attempts < EMAIL_ATTEMPTS => {
                    tracing::warn!(%err, firing = %firing.sid, "alarm e-mail failed; retrying");
                    let retry_at = now_micros() + EMAIL_RETRY_BASE * (1 << (attempts - 1));
                    self.store
                        .settle_alarm_email(&firing.sid, "pending", Some(&err), Some(retry_at))
                        .await?;
                }
                Err(err) => {
                    tracing::error!(%err, firing = %firing.sid, "alarm e-mail given up");
                    self.store
                        .settle_alarm_email(&firing.sid, "failed", Some(&err), None)
                        .await?;
                }
            }
        }
        Ok(sent)
    }
}

/// A value as shown: a count, or a percentage to two decimals.
fn format_value(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value:.2}")
    }
}

fn error_code_text(alarm: &Alarm) -> String {
    alarm
        .error_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "any".into())
}

/// The webhook's form (signed like every webhook, with the account's auth token).
fn alarm_form(alarm: &Alarm, firing: &AlarmFiring) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("AccountSid", &alarm.account_sid)
        .append_pair("AlarmSid", &alarm.sid)
        .append_pair("FiringSid", &firing.sid)
        .append_pair("State", &firing.state)
        .append_pair("ErrorCode", &error_code_text(alarm))
        .append_pair("ScopeSid", &alarm.scope_sid)
        .append_pair("ThresholdType", alarm.threshold_type.as_str())
        .append_pair("Threshold", &format_threshold(alarm.threshold))
        .append_pair("WindowMinutes", &alarm.window_minutes.to_string())
        .append_pair("Value", &firing.value)
        .append_pair("Errors", &firing.counts.errors.to_string())
        .append_pair("Messages", &firing.counts.messages.to_string())
        .append_pair("DateFired", &rfc2822(firing.date_created))
        .append_pair("IdempotencyToken", &firing.sid)
        .finish()
}

fn alarm_mail(alarm: &Alarm, firing: &AlarmFiring) -> (String, String) {
    let name = alarm.friendly_name.as_deref().unwrap_or(&alarm.sid);
    let rule = format!(
        "error {} {} {}{} in {} minutes",
        error_code_text(alarm),
        if firing.state == "firing" {
            "reached"
        } else {
            "below"
        },
        format_threshold(alarm.threshold),
        match alarm.threshold_type {
            ThresholdType::Count => "",
            ThresholdType::Percentage => "%",
        },
        alarm.window_minutes
    );
    let subject = format!("[warbler] alarm {name} {}: {rule}", firing.state);
    let body = format!(
        "Alarm: {name} ({})\nAccount: {}\nScope: {}\nState: {}\nRule: {rule}\nValue: {} ({} errors of {} messages)\nAt: {}\n",
        alarm.sid,
        alarm.account_sid,
        alarm.scope_sid,
        firing.state,
        firing.value,
        firing.counts.errors,
        firing.counts.messages,
        rfc2822(firing.date_created),
    );
    (subject, body)
}
