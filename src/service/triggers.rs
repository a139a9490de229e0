//! Usage Triggers at request time: CRUD and their current values. The evaluator that fires
//! them is `engine::triggers`.

use super::{App, Operation, Principal};
use crate::domain::account::Account;
use crate::domain::number::{validate_method, validate_url};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::domain::usage::{
    day_of, day_string, format_measure, includes, parse_money, parse_recurring, parse_trigger_by,
    trigger_measure, trigger_period, Money, REPORTED,
};
use crate::error::{Error, Result};
use crate::store::triggers::{TriggerFilter, UsageTrigger};

/// A `CreateUsageTrigger` request as sent.
#[derive(Debug, Default)]
pub struct TriggerRequest<'a> {
    pub callback_url: Option<&'a str>,
    pub callback_method: Option<&'a str>,
    pub trigger_value: Option<&'a str>,
    pub usage_category: Option<&'a str>,
    pub friendly_name: Option<&'a str>,
    pub recurring: Option<&'a str>,
    pub trigger_by: Option<&'a str>,
}

/// Usage triggers one account may have (Twilio's limit is about as many).
pub const MAX_TRIGGERS_PER_ACCOUNT: i64 = 1000;

/// How often the evaluator looks at the triggers (Twilio: about once a minute).
pub const EVALUATION_INTERVAL: i64 = 10_000_000;

/// The Usage Records sub-resource that shows a trigger's period.
pub fn usage_record_uri(t: &UsageTrigger) -> String {
    let period = match t.recurring.as_deref() {
        Some("daily") => "Today",
        Some("monthly") => "ThisMonth",
        Some("yearly") => "Yearly",
        _ => "AllTime",
    };
    format!(
        "/2010-04-01/Accounts/{}/Usage/Records/{period}.json?Category={}",
        t.account_sid, t.usage_category
    )
}

impl App {
    /// The trigger's measure now (its account, plus subaccounts for a main account).
    pub async fn trigger_current_value(&self, t: &UsageTrigger, now: i64) -> Result<Money> {
        let account = self
            .store
            .account(&t.account_sid)
            .await?
            .ok_or_else(|| Error::internal("trigger of a missing account"))?;
        self.measure(
            &account,
            &t.usage_category,
            &t.trigger_by,
            t.recurring.as_deref(),
            now,
        )
        .await
    }

    async fn measure(
        &self,
        account: &Account,
        category: &str,
        trigger_by: &str,
        recurring: Option<&str>,
        now: i64,
    ) -> Result<Money> {
        let today = day_of(now);
        let (_, first) = trigger_period(recurring, today);
        let mut accounts = vec![account.sid.clone()];
        if account.is_main() {
            accounts.extend(self.store.subaccount_sids(&account.sid).await?);
        }
        let first = first.map(day_string).unwrap_or_else(|| "0000-01-01".into());
        let rows = self
            .store
            .usage_rows(&accounts, &first, &day_string(today))
            .await?;
        let (mut count, mut usage, mut price) = (0, 0, 0);
        for (_, leaf, c, u, p) in rows {
            if includes(category, &leaf) {
                count += c;
                usage += u;
                price += p;
            }
        }
        // `usage` of totalprice is money, as in the Usage Records.
        if category == "totalprice" && trigger_by == "usage" {
            return Ok(price);
        }
        Ok(trigger_measure(trigger_by, count, usage, price))
    }

    /// `CreateUsageTrigger`.
    pub async fn create_trigger(
        &self,
        principal: &Principal,
        account_sid: &str,
        request: TriggerRequest<'_>,
        path: &str,
    ) -> Result<UsageTrigger> {
        let account = self
            .authorize(principal, account_sid, Operation::CreateUsageTrigger, path)
            .await?;
        let callback_url = request
            .callback_url
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::missing_parameter("CallbackUrl"))?;
        let callback_url = validate_url("CallbackUrl", callback_url)?
            .ok_or_else(|| Error::missing_parameter("CallbackUrl"))?;
        let callback_method = match request.callback_method {
            Some(raw) => validate_method("CallbackMethod", raw)?,
            None => "POST".to_string(),
        };
        let category = request
            .usage_category
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::missing_parameter("UsageCategory"))?;
        if !REPORTED.iter().any(|(name, ..)| *name == category) {
            return Err(Error::invalid_parameter("UsageCategory", category));
        }
        let trigger_by = match request.trigger_by {
            Some(raw) => {
                parse_trigger_by(raw).ok_or_else(|| Error::invalid_parameter("TriggerBy", raw))?
            }
            None => "usage",
        };
        let recurring = match request.recurring.filter(|v| !v.is_empty()) {
            Some(raw) => Some(
                parse_recurring(raw).ok_or_else(|| Error::invalid_parameter("Recurring", raw))?,
            ),
            None => None,
        };
        if let Some(name) = request.friendly_name {
            if name.chars().count() > 64 {
                return Err(Error::invalid_parameter("FriendlyName", name));
            }
        }
        let raw_value = request
            .trigger_value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::missing_parameter("TriggerValue"))?;
        let now = now_micros();
        // `+N` is N above the current value.
        let value = match raw_value.strip_prefix('+') {
            Some(offset) => {
                let offset = parse_money(offset)
                    .ok_or_else(|| Error::invalid_parameter("TriggerValue", raw_value))?;
                self.measure(&account, category, trigger_by, recurring, now)
                    .await?
                    .checked_add(offset)
                    .ok_or_else(|| Error::invalid_parameter("TriggerValue", raw_value))?
            }
            None => parse_money(raw_value)
                .filter(|v| *v >= 0)
                .ok_or_else(|| Error::invalid_parameter("TriggerValue", raw_value))?,
        };
        if self.store.count_triggers(&account.sid).await? >= MAX_TRIGGERS_PER_ACCOUNT {
            return Err(Error::invalid(
                20001,
                format!("An account may have at most {MAX_TRIGGERS_PER_ACCOUNT} usage triggers"),
            ));
        }
        let trigger = UsageTrigger {
            sid: sid::generate(SidKind::UsageTrigger),
            account_sid: account.sid.clone(),
            friendly_name: request.friendly_name.map(str::to_string),
            callback_url,
            callback_method,
            usage_category: category.to_string(),
            trigger_by: trigger_by.to_string(),
            trigger_value: format_measure(category, trigger_by, value),
            recurring: recurring.map(str::to_string),
            fired_period: None,
            date_fired: None,
            date_created: now,
            date_updated: now,
        };
        self.store.insert_trigger(&trigger).await?;
        Ok(trigger)
    }

    /// `FetchUsageTrigger`.
    pub async fn fetch_trigger(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<UsageTrigger> {
        let account = self
            .authorize(principal, account_sid, Operation::FetchUsageTrigger, path)
            .await?;
        self.store
            .trigger(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `ListUsageTrigger`.
    pub async fn list_triggers(
        &self,
        principal: &Principal,
        account_sid: &str,
        filter: &TriggerFilter,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<UsageTrigger>> {
        let account = self
            .authorize(principal, account_sid, Operation::ListUsageTrigger, path)
            .await?;
        self.store.list_triggers(&account.sid, filter, page).await
    }

    /// `UpdateUsageTrigger`: `CallbackMethod`, `CallbackUrl`, `FriendlyName`.
    pub async fn update_trigger(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        changes: &TriggerRequest<'_>,
        path: &str,
    ) -> Result<UsageTrigger> {
        let account = self
            .authorize(principal, account_sid, Operation::UpdateUsageTrigger, path)
            .await?;
        let url = match changes.callback_url {
            Some(raw) => Some(
                validate_url("CallbackUrl", raw)?
                    .ok_or_else(|| Error::invalid_parameter("CallbackUrl", raw))?,
            ),
            None => None,
        };
        let method = changes
            .callback_method
            .map(|raw| validate_method("CallbackMethod", raw))
            .transpose()?;
        if let Some(name) = changes.friendly_name {
            if name.chars().count() > 64 {
                return Err(Error::invalid_parameter("FriendlyName", name));
            }
        }
        if !self
            .store
            .update_trigger(
                &account.sid,
                sid,
                changes.friendly_name,
                url.as_deref(),
                method.as_deref(),
                now_micros(),
            )
            .await?
        {
            return Err(Error::not_found(path));
        }
        self.fetch_trigger(principal, account_sid, sid, path).await
    }

    /// `DeleteUsageTrigger`.
    pub async fn delete_trigger(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<()> {
        let account = self
            .authorize(principal, account_sid, Operation::DeleteUsageTrigger, path)
            .await?;
        if !self.store.delete_trigger(&account.sid, sid).await? {
            return Err(Error::not_found(path));
        }
        Ok(())
    }
}
