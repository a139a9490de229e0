//! Alarms (a warbler extension) at request time: CRUD and their window counts. The
//! evaluator that moves each between `ok` and `firing` is `engine::alarms`.

use super::{App, Operation, Principal};
use crate::domain::account::Account;
use crate::domain::alarm::{
    bucket_of, format_threshold, parse_threshold, valid_email, Alarm, AlarmFiring, AlarmState,
    ThresholdType, WindowCounts, BUCKET, MAX_EMAILS, MAX_WINDOW_MINUTES, MIN_WINDOW_MINUTES,
};
use crate::domain::number::{validate_method, validate_url};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::alarms::CountScope;

/// Alarms one account may have.
pub const MAX_ALARMS_PER_ACCOUNT: i64 = 100;

/// How often the evaluator looks at the alarms (microseconds).
pub const EVALUATION_INTERVAL: i64 = 10_000_000;

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
}
