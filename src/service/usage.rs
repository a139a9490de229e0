//! Usage Records (computed from the pre-aggregated daily usage rows), the shared balance of a
//! main account and its subaccounts, operator credits, and monthly rental charges.

use super::{App, Operation, Principal};
use crate::domain::account::Account;
use crate::domain::time::now_micros;
use crate::domain::usage::{
    day_of, day_string, format_money, includes, parse_money, parse_usage_date, Money, Period,
    MAX_CREDIT, REPORTED,
};
use crate::error::{Error, Result};
use time::Date;

/// A Usage Records query as sent.
#[derive(Debug, Default, Clone)]
pub struct UsageQuery<'a> {
    pub category: Option<&'a str>,
    pub start_date: Option<&'a str>,
    pub end_date: Option<&'a str>,
    pub include_subaccounts: Option<bool>,
}

/// One usage record.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub account_sid: String,
    pub category: &'static str,
    pub description: &'static str,
    pub count: i64,
    pub count_unit: &'static str,
    pub usage: i64,
    pub usage_unit: &'static str,
    pub price: Money,
    pub start_date: Date,
    pub end_date: Date,
}

impl UsageRecord {
    /// `usage` as Twilio prints it (the price for `totalprice`).
    pub fn usage_text(&self) -> String {
        if self.category == "totalprice" {
            crate::domain::usage::format_money(self.price)
        } else {
            self.usage.to_string()
        }
    }
}

impl App {
    /// `ListUsageRecord` and its sub-resources.
    pub async fn usage_records(
        &self,
        principal: &Principal,
        account_sid: &str,
        period: Period,
        query: &UsageQuery<'_>,
        path: &str,
    ) -> Result<Vec<UsageRecord>> {
        let account = self
            .authorize(principal, account_sid, Operation::ListUsageRecord, path)
            .await?;
        let today = day_of(now_micros());
        let category = match query.category.filter(|c| !c.is_empty()) {
            Some(raw) => Some(
                REPORTED
                    .iter()
                    .find(|(name, ..)| *name == raw)
                    .ok_or_else(|| Error::invalid_parameter("Category", raw))?,
            ),
            None => None,
        };
        let created = day_of(account.date_created);
        let (start, end) = match period.fixed_range(today) {
            Some(range) => range,
            None => {
                let start = query
                    .start_date
                    .filter(|s| !s.is_empty())
                    .map(|raw| parse_usage_date("StartDate", raw, today))
                    .transpose()?
                    .unwrap_or(created.min(today));
                let end = query
                    .end_date
                    .filter(|s| !s.is_empty())
                    .map(|raw| parse_usage_date("EndDate", raw, today))
                    .transpose()?
                    .unwrap_or(today);
                if end < start {
                    return Err(Error::invalid(
                        20001,
                        "EndDate must not be before StartDate",
                    ));
                }
                (start, end)
            }
        };
        let mut accounts = vec![account.sid.clone()];
        if account.is_main() && query.include_subaccounts.unwrap_or(true) {
            accounts.extend(self.store.subaccount_sids(&account.sid).await?);
        }
        let rows = self
            .store
            .usage_rows(&accounts, &day_string(start), &day_string(end))
            .await?;
        let buckets = match period {
            Period::Daily | Period::Monthly | Period::Yearly => period.buckets(start, end),
            _ => vec![(start, end)],
        };
        if buckets.len() * REPORTED.len() > 200_000 {
            return Err(Error::invalid(
                20001,
                "The date range is too long for this period",
            ));
        }
        let mut records = Vec::new();
        for (from, to) in buckets {
            let (from_day, to_day) = (day_string(from), day_string(to));
            for reported in REPORTED {
                if category.is_some_and(|c| c.0 != reported.0) {
                    continue;
                }
                let (name, description, count_unit, usage_unit) = *reported;
                let mut record = UsageRecord {
                    account_sid: account.sid.clone(),
                    category: name,
                    description,
                    count: 0,
                    count_unit,
                    usage: 0,
                    usage_unit,
                    price: 0,
                    start_date: from,
                    end_date: to,
                };
                for (day, leaf, count, units, price) in &rows {
                    if *day >= from_day && *day <= to_day && includes(name, leaf) {
                        // A total of prices counts nothing.
                        if name != "totalprice" {
                            record.count += count;
                        }
                        record.usage += units;
                        record.price += price;
                    }
                }
                records.push(record);
            }
        }
        Ok(records)
    }

    /// `FetchBalance`: the balance shared by a main account and its subaccounts.
    pub async fn balance(
        &self,
        principal: &Principal,
        account_sid: &str,
        path: &str,
    ) -> Result<(String, Money)> {
        let account = self
            .authorize(principal, account_sid, Operation::FetchBalance, path)
            .await?;
        // Subaccounts hold no balance information (Twilio): the shared balance shows the
        // operator's credits and the siblings' spending, so only the parent reads it.
        if !principal.account.is_main() {
            return Err(Error::forbidden(
                20403,
                "Subaccounts hold no balance information; the main account reads the shared balance",
            ));
        }
        // The main account holds the balance its subaccounts share.
        let holder = account.owner_sid().to_string();
        Ok((account.sid, self.store.balance(&holder).await?))
    }

    /// `CreditBalance` (operator): adds `amount` to the balance of `account_sid`'s family.
    pub async fn credit_balance(
        &self,
        principal: &Principal,
        account_sid: Option<&str>,
        amount: Option<&str>,
        note: Option<&str>,
    ) -> Result<Money> {
        super::check_credential(principal, Operation::CreditBalance)?;
        let sid = account_sid.ok_or_else(|| Error::missing_parameter("AccountSid"))?;
        let account = self
            .store
            .account(sid)
            .await?
            .filter(|a| principal.account.is_self_or_parent_of(a))
            .ok_or_else(|| {
                Error::invalid(
                    21473,
                    format!("AccountSid {sid} is not in this main account's family"),
                )
            })?;
        self.credit(&account, amount, note).await
    }

    /// Credits the balance `account` shares (`warbler billing credit` and the admin endpoint).
    pub async fn credit(
        &self,
        account: &Account,
        amount: Option<&str>,
        note: Option<&str>,
    ) -> Result<Money> {
        let raw = amount.ok_or_else(|| Error::missing_parameter("Amount"))?;
        let amount = parse_money(raw)
            .filter(|a| *a != 0 && a.abs() <= MAX_CREDIT)
            .ok_or_else(|| {
                Error::invalid(
                    20001,
                    format!(
                        "Invalid value '{raw}' for parameter Amount: a non-zero amount of at most {} either way",
                        format_money(MAX_CREDIT)
                    ),
                )
            })?;
        let holder = account.owner_sid().to_string();
        self.store
            .credit(&holder, amount, note.unwrap_or(""), now_micros())
            .await?;
        self.store.balance(&holder).await
    }

    /// Refuses a new send when the account's family is past its credit limit.
    pub(crate) async fn check_funds(&self, account: &Account) -> Result<()> {
        let Some(limit) = self.settings.credit_limit else {
            return Ok(());
        };
        let holder = account.owner_sid().to_string();
        // Messages accepted but not sent yet count too, at their price.
        if self.store.reserved_balance(&holder).await? < -limit {
            return Err(Error::forbidden(
                20005,
                "Account not active: the balance is exhausted (credit the main account)",
            ));
        }
        Ok(())
    }

    /// Charges number rentals that came due. Returns how many were charged.
    pub async fn charge_rentals(&self, now: i64) -> Result<usize> {
        self.store.charge_due_rentals(now, 500).await
    }
}

/// Reads one cap parameter: empty clears it.
fn cap_value<T>(
    name: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<Option<T>>> {
    match raw {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(value) => parse(value)
            .map(|v| Some(Some(v)))
            .ok_or_else(|| Error::invalid_parameter(name, value)),
    }
}

/// A caps update as sent: each `None` keeps the current value, `Some("")` clears it.
#[derive(Debug, Default, Clone)]
pub struct CapsRequest<'a> {
    pub max_sps: Option<&'a str>,
    pub monthly_messages: Option<&'a str>,
    pub monthly_spend: Option<&'a str>,
}

impl App {
    /// The subaccount whose caps the operator may read or set.
    async fn capped_account(&self, principal: &Principal, account_sid: &str) -> Result<Account> {
        super::check_credential(principal, Operation::SetAccountCaps)?;
        self.store
            .account(account_sid)
            .await?
            .filter(|a| a.owner_account_sid.as_deref() == Some(principal.account.sid.as_str()))
            .ok_or_else(|| {
                Error::invalid(
                    21473,
                    format!("{account_sid} is not a subaccount of this main account"),
                )
            })
    }

    /// `FetchAccountCaps` (warbler extension).
    pub async fn account_caps(
        &self,
        principal: &Principal,
        account_sid: &str,
    ) -> Result<crate::store::caps::AccountCaps> {
        let account = self.capped_account(principal, account_sid).await?;
        self.caps_of(&account.sid).await
    }

    /// An account's caps (none set: all empty).
    pub async fn caps_of(&self, account_sid: &str) -> Result<crate::store::caps::AccountCaps> {
        Ok(self
            .store
            .account_caps(&[account_sid])
            .await?
            .remove(account_sid)
            .unwrap_or_default())
    }

    /// `UpdateAccountCaps` (warbler extension): the parent caps a subaccount.
    pub async fn set_account_caps(
        &self,
        principal: &Principal,
        account_sid: &str,
        request: &CapsRequest<'_>,
    ) -> Result<crate::store::caps::AccountCaps> {
        let account = self.capped_account(principal, account_sid).await?;
        self.set_caps(&account.sid, request).await
    }

    /// Applies a caps update (the admin endpoint and `warbler caps set`).
    pub async fn set_caps(
        &self,
        account_sid: &str,
        request: &CapsRequest<'_>,
    ) -> Result<crate::store::caps::AccountCaps> {
        let max_sps = cap_value("MaxSegmentsPerSecond", request.max_sps, |raw| {
            raw.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
        })?;
        let monthly_messages = cap_value("MonthlyMessages", request.monthly_messages, |raw| {
            raw.parse::<i64>().ok().filter(|v| *v >= 0)
        })?;
        let monthly_spend = cap_value("MonthlySpend", request.monthly_spend, |raw| {
            parse_money(raw).filter(|v| *v >= 0)
        })?;
        // Read, changed and written in one locked transaction: a concurrent update of another
        // cap is kept, not overwritten with the value read before it.
        self.store
            .update_account_caps(
                account_sid,
                |caps| {
                    if let Some(v) = max_sps {
                        caps.max_sps = v;
                    }
                    if let Some(v) = monthly_messages {
                        caps.monthly_messages = v;
                    }
                    if let Some(v) = monthly_spend {
                        caps.monthly_spend = v;
                    }
                },
                now_micros(),
            )
            .await
    }
}
