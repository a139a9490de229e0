//! Account use cases: the main account at first start, subaccounts, renames and status changes.

use super::{check_credential, App, Operation, Principal};
use crate::domain::account::{
    default_subaccount_name, plan_status_change, validate_friendly_name, Account, AccountStatus,
    Actor,
};
use crate::domain::credential::is_valid_auth_token;
use crate::domain::messaging_service::{MessagingService, DEFAULT_SERVICE_NAME};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::accounts::{AccountFilter, CreateSubaccountOutcome};

/// The Messaging Service every new account gets, as Twilio creates one at account creation.
fn default_service(account_sid: &str, now: i64) -> MessagingService {
    MessagingService::new(
        sid::generate(SidKind::MessagingService),
        account_sid.to_string(),
        DEFAULT_SERVICE_NAME.to_string(),
        now,
    )
}

/// The main account, and whether it was created just now (its token is then shown once).
pub struct MainAccount {
    pub account: Account,
    pub created: bool,
}

/// An update request for `UpdateAccount`.
#[derive(Debug, Default)]
pub struct AccountUpdate {
    pub friendly_name: Option<String>,
    pub status: Option<AccountStatus>,
}

impl App {
    /// Returns the main account, creating it on first start with the configured SID and token
    /// when given (deployments and tests need deterministic credentials), else random ones.
    pub async fn ensure_main_account(
        &self,
        fixed_sid: Option<&str>,
        fixed_token: Option<&str>,
        friendly_name: &str,
    ) -> anyhow::Result<MainAccount> {
        if let Some(account) = self.store.main_account().await? {
            if fixed_sid.is_some_and(|sid| sid != account.sid) {
                tracing::warn!(
                    existing = %account.sid,
                    "account_sid is set but the database already has another main account; keeping the existing one"
                );
            }
            return Ok(MainAccount {
                account,
                created: false,
            });
        }
        let sid = match fixed_sid {
            Some(sid) if sid::is_valid(SidKind::Account, sid) => sid.to_string(),
            Some(sid) => anyhow::bail!("account_sid {sid:?} is not AC followed by 32 hex digits"),
            None => sid::generate(SidKind::Account),
        };
        let auth_token = match fixed_token {
            Some(token) if is_valid_auth_token(token) => token.to_string(),
            Some(_) => anyhow::bail!("auth_token must be 32 hex digits"),
            None => sid::random_hex32(),
        };
        let now = now_micros();
        let account = Account {
            sid,
            owner_account_sid: None,
            friendly_name: friendly_name.to_string(),
            status: AccountStatus::Active,
            auth_token,
            date_created: now,
            date_updated: now,
            sandbox: false,
        };
        self.store
            .insert_main_account(&account, &default_service(&account.sid, now))
            .await?;
        // Its SID may be a configured one, asked for before it existed.
        self.unknown_sids.forget(&account.sid);
        Ok(MainAccount {
            account,
            created: true,
        })
    }

    /// `CreateAccount`: a main account's auth token creates a subaccount under it.
    pub async fn create_subaccount(
        &self,
        principal: &Principal,
        friendly_name: Option<&str>,
    ) -> Result<Account> {
        check_credential(principal, Operation::CreateAccount)?;
        if !principal.account.is_main() {
            return Err(Error::invalid(
                21101,
                "Subaccounts cannot create subaccounts",
            ));
        }
        let now = now_micros();
        let friendly_name = match friendly_name {
            Some(name) if !name.is_empty() => validate_friendly_name(name)?.to_string(),
            _ => default_subaccount_name(now),
        };
        let account = Account {
            sid: sid::generate(SidKind::Account),
            owner_account_sid: Some(principal.account.sid.clone()),
            friendly_name,
            status: AccountStatus::Active,
            auth_token: sid::random_hex32(),
            date_created: now,
            date_updated: now,
            sandbox: false,
        };
        match self
            .store
            .create_subaccount(
                &account,
                &default_service(&account.sid, now),
                self.settings.max_subaccounts,
            )
            .await?
        {
            CreateSubaccountOutcome::Created => {
                self.unknown_sids.forget(&account.sid);
                Ok(account)
            }
            CreateSubaccountOutcome::CapReached => Err(Error::invalid(
                21480,
                format!(
                    "Reached the maximum number of subaccounts ({})",
                    self.settings.max_subaccounts
                ),
            )),
            CreateSubaccountOutcome::ParentMissing => Err(Error::Unauthenticated),
        }
    }

    /// `ListAccount`: the caller's own account and its subaccounts.
    pub async fn list_accounts(
        &self,
        principal: &Principal,
        filter: &AccountFilter,
        page: &PageRequest,
    ) -> Result<Vec<Account>> {
        check_credential(principal, Operation::ListAccount)?;
        self.store
            .list_accounts(&principal.account.sid, filter, page)
            .await
    }

    /// `FetchAccount`.
    pub async fn fetch_account(
        &self,
        principal: &Principal,
        sid: &str,
        path: &str,
    ) -> Result<Account> {
        self.authorize(principal, sid, Operation::FetchAccount, path)
            .await
    }

    /// `UpdateAccount`: rename, suspend, reactivate or close.
    pub async fn update_account(
        &self,
        principal: &Principal,
        sid: &str,
        update: AccountUpdate,
        path: &str,
    ) -> Result<Account> {
        let _services_changed = self.services_changed();
        let target = self
            .authorize(principal, sid, Operation::UpdateAccount, path)
            .await?;
        if let Some(name) = &update.friendly_name {
            validate_friendly_name(name)?;
        }
        let status = match update.status {
            None => None,
            Some(requested) => {
                let actor = if target.sid == principal.account.sid {
                    Actor::SelfAccount
                } else {
                    Actor::Parent
                };
                plan_status_change(target.status, requested, actor, target.is_main())?
            }
        };
        if update.friendly_name.is_none() && status.is_none() {
            return Ok(target);
        }
        let updated = self
            .store
            .update_account(
                &target.sid,
                update.friendly_name.as_deref(),
                status,
                now_micros(),
            )
            .await?
            .ok_or_else(|| Error::not_found(path));
        self.accounts.forget(&target.sid);
        updated
    }
}

impl App {
    /// Whether `account_sid` is a sandbox (the account itself or its parent may read it).
    pub async fn sandbox(
        &self,
        principal: &Principal,
        account_sid: &str,
        path: &str,
    ) -> Result<Account> {
        self.authorize(principal, account_sid, Operation::FetchSandbox, path)
            .await
    }

    /// Makes a subaccount a sandbox, or a live account again. Only its parent may: a
    /// staging environment's own credentials cannot take it out of the sandbox.
    pub async fn set_sandbox(
        &self,
        principal: &Principal,
        account_sid: &str,
        sandbox: bool,
        path: &str,
    ) -> Result<Account> {
        let account = self
            .authorize(principal, account_sid, Operation::UpdateSandbox, path)
            .await?;
        if account.owner_account_sid.as_deref() != Some(principal.account.sid.as_str()) {
            return Err(Error::forbidden(
                20403,
                "Only a subaccount's parent may make it a sandbox or take it out of one",
            ));
        }
        self.store
            .set_sandbox(&account.sid, sandbox, now_micros())
            .await?;
        // This node sends its next messages by the new setting at once (others within the
        // account cache's second).
        self.accounts.forget(&account.sid);
        self.store
            .account(&account.sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }
}
