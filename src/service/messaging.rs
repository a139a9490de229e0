//! Messaging Service use cases. The v1 API has no account in its paths: a service belongs to
//! the account whose credentials call it.

use super::{check_credential, App, Operation, Principal};
use crate::domain::messaging_service::{
    validate_alpha_sender, validate_service_name, MessagingService, ServiceChanges, MAX_POOL_SIZE,
};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::messaging::{AlphaSender, JoinOutcome, PooledNumber};

/// The two kinds of numbers a pool holds through `phone_numbers` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    PhoneNumber,
    ShortCode,
}

impl PoolKind {
    fn is_short_code(self) -> bool {
        self == PoolKind::ShortCode
    }

    fn sid_kind(self) -> SidKind {
        match self {
            PoolKind::PhoneNumber => SidKind::PhoneNumber,
            PoolKind::ShortCode => SidKind::ShortCode,
        }
    }
}

impl App {
    /// The service `sid` of the caller's account, or 20404.
    pub(super) async fn own_service(
        &self,
        principal: &Principal,
        operation: Operation,
        sid: &str,
        path: &str,
    ) -> Result<MessagingService> {
        check_credential(principal, operation)?;
        self.store
            .service(&principal.account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `CreateService`.
    pub async fn create_service(
        &self,
        principal: &Principal,
        friendly_name: Option<&str>,
        changes: ServiceChanges,
    ) -> Result<MessagingService> {
        check_credential(principal, Operation::CreateService)?;
        let name = friendly_name.ok_or_else(|| Error::missing_parameter("FriendlyName"))?;
        let mut service = MessagingService::new(
            sid::generate(SidKind::MessagingService),
            principal.account.sid.clone(),
            validate_service_name(name)?,
            now_micros(),
        );
        changes.apply(&mut service);
        let cap = self.settings.max_services_per_account;
        if !self.store.insert_service_capped(&service, cap).await? {
            return Err(Error::invalid(
                20001,
                format!(
                    "Reached the maximum number of Messaging Services for this account ({cap})"
                ),
            ));
        }
        Ok(service)
    }

    /// `ListService`.
    pub async fn list_services(
        &self,
        principal: &Principal,
        page: &PageRequest,
    ) -> Result<Vec<MessagingService>> {
        check_credential(principal, Operation::ListService)?;
        self.store.list_services(&principal.account.sid, page).await
    }

    /// `FetchService`.
    pub async fn fetch_service(
        &self,
        principal: &Principal,
        sid: &str,
        path: &str,
    ) -> Result<MessagingService> {
        self.own_service(principal, Operation::FetchService, sid, path)
            .await
    }

    /// `UpdateService`.
    pub async fn update_service(
        &self,
        principal: &Principal,
        sid: &str,
        changes: ServiceChanges,
        path: &str,
    ) -> Result<MessagingService> {
        let _services_changed = self.services_changed();
        let mut service = self
            .own_service(principal, Operation::UpdateService, sid, path)
            .await?;
        if let Some(name) = &changes.friendly_name {
            validate_service_name(name)?;
        }
        changes.apply(&mut service);
        service.date_updated = now_micros();
        self.store.save_service(&service).await?;
        Ok(service)
    }

    /// `DeleteService`: its senders are freed.
    pub async fn delete_service(&self, principal: &Principal, sid: &str, path: &str) -> Result<()> {
        let _services_changed = self.services_changed();
        check_credential(principal, Operation::DeleteService)?;
        if self
            .store
            .delete_service(&principal.account.sid, sid)
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }

    /// `CreatePhoneNumber` / `CreateShortCode`: adds one of the account's numbers to the pool.
    pub async fn add_to_pool(
        &self,
        principal: &Principal,
        service_sid: &str,
        kind: PoolKind,
        number_sid: Option<&str>,
        path: &str,
    ) -> Result<PooledNumber> {
        let _services_changed = self.services_changed();
        let (operation, param) = match kind {
            PoolKind::PhoneNumber => (Operation::CreatePhoneNumber, "PhoneNumberSid"),
            PoolKind::ShortCode => (Operation::CreateShortCode, "ShortCodeSid"),
        };
        let service = self
            .own_service(principal, operation, service_sid, path)
            .await?;
        let number_sid = number_sid.ok_or_else(|| Error::missing_parameter(param))?;
        let not_ours = || {
            Error::invalid(
                21421,
                format!(
                    "{param} {number_sid} is not a valid {} of this account",
                    match kind {
                        PoolKind::PhoneNumber => "phone number",
                        PoolKind::ShortCode => "short code",
                    }
                ),
            )
        };
        if !sid::is_valid(kind.sid_kind(), number_sid) {
            return Err(not_ours());
        }
        if kind == PoolKind::PhoneNumber {
            let number = self
                .store
                .incoming_number(&service.account_sid, number_sid)
                .await?
                .ok_or_else(not_ours)?;
            let caps = number.inventory.capabilities;
            if !caps.sms && !caps.mms {
                return Err(Error::invalid(
                    21715,
                    "The phone number has neither SMS nor MMS capability",
                ));
            }
        }
        let outcome = self
            .store
            .join_pool(
                &service.account_sid,
                &service.sid,
                number_sid,
                kind.is_short_code(),
                MAX_POOL_SIZE,
                now_micros(),
            )
            .await?;
        match outcome {
            JoinOutcome::Joined(pooled) => Ok(pooled),
            JoinOutcome::NotOwned => Err(not_ours()),
            JoinOutcome::AlreadyPooled { same_service: true } => Err(Error::invalid(
                80104,
                "This sender has already been added to this Service",
            )),
            JoinOutcome::AlreadyPooled {
                same_service: false,
            } => Err(Error::invalid(
                21712,
                "This sender is already in another Messaging Service: remove it there first",
            )),
            JoinOutcome::PoolFull => Err(Error::invalid(
                21714,
                format!(
                    "The Messaging Service already holds {MAX_POOL_SIZE} numbers and short codes"
                ),
            )),
        }
    }

    /// `ListPhoneNumber` / `ListShortCode`.
    pub async fn list_pool(
        &self,
        principal: &Principal,
        service_sid: &str,
        kind: PoolKind,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<PooledNumber>> {
        let operation = match kind {
            PoolKind::PhoneNumber => Operation::ListPhoneNumber,
            PoolKind::ShortCode => Operation::ListShortCode,
        };
        let service = self
            .own_service(principal, operation, service_sid, path)
            .await?;
        self.store
            .list_pooled_numbers(&service.sid, kind.is_short_code(), page)
            .await
    }

    /// `FetchPhoneNumber` / `FetchShortCode` (by SID, or by the number itself).
    pub async fn fetch_pooled(
        &self,
        principal: &Principal,
        service_sid: &str,
        kind: PoolKind,
        sid: &str,
        path: &str,
    ) -> Result<PooledNumber> {
        let operation = match kind {
            PoolKind::PhoneNumber => Operation::FetchPhoneNumber,
            PoolKind::ShortCode => Operation::FetchShortCode,
        };
        let service = self
            .own_service(principal, operation, service_sid, path)
            .await?;
        self.store
            .pooled_number(
                &service.account_sid,
                &service.sid,
                sid,
                kind.is_short_code(),
            )
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `DeletePhoneNumber` / `DeleteShortCode`: the number stays with the account.
    pub async fn remove_from_pool(
        &self,
        principal: &Principal,
        service_sid: &str,
        kind: PoolKind,
        sid: &str,
        path: &str,
    ) -> Result<()> {
        let _services_changed = self.services_changed();
        let operation = match kind {
            PoolKind::PhoneNumber => Operation::DeletePhoneNumber,
            PoolKind::ShortCode => Operation::DeleteShortCode,
        };
        let service = self
            .own_service(principal, operation, service_sid, path)
            .await?;
        if self
            .store
            .leave_pool(
                &service.account_sid,
                &service.sid,
                sid,
                kind.is_short_code(),
            )
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }

    /// `CreateAlphaSender`.
    pub async fn add_alpha_sender(
        &self,
        principal: &Principal,
        service_sid: &str,
        alpha_sender: Option<&str>,
        path: &str,
    ) -> Result<AlphaSender> {
        let _services_changed = self.services_changed();
        let service = self
            .own_service(principal, Operation::CreateAlphaSender, service_sid, path)
            .await?;
        let raw = alpha_sender.ok_or_else(|| Error::missing_parameter("AlphaSender"))?;
        let now = now_micros();
        let alpha = AlphaSender {
            sid: sid::generate(SidKind::AlphaSender),
            account_sid: service.account_sid,
            service_sid: service.sid,
            alpha_sender: validate_alpha_sender(raw)?,
            date_created: now,
            date_updated: now,
        };
        self.store.add_alpha_sender(&alpha).await?.ok_or_else(|| {
            Error::invalid(
                80104,
                format!("AlphaSender {raw:?} has already been added to this Service"),
            )
        })
    }

    /// `ListAlphaSender`.
    pub async fn list_alpha_senders(
        &self,
        principal: &Principal,
        service_sid: &str,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<AlphaSender>> {
        let service = self
            .own_service(principal, Operation::ListAlphaSender, service_sid, path)
            .await?;
        self.store.list_alpha_senders(&service.sid, page).await
    }

    /// `FetchAlphaSender`.
    pub async fn fetch_alpha_sender(
        &self,
        principal: &Principal,
        service_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<AlphaSender> {
        let service = self
            .own_service(principal, Operation::FetchAlphaSender, service_sid, path)
            .await?;
        self.store
            .alpha_sender(&service.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `DeleteAlphaSender`.
    pub async fn delete_alpha_sender(
        &self,
        principal: &Principal,
        service_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<()> {
        let _services_changed = self.services_changed();
        let service = self
            .own_service(principal, Operation::DeleteAlphaSender, service_sid, path)
            .await?;
        if self.store.delete_alpha_sender(&service.sid, sid).await? {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }

    /// `AssignShortCode` (warbler's own): gives an inventory short code to an account.
    pub async fn assign_short_code(
        &self,
        principal: &Principal,
        short_code: Option<&str>,
        account_sid: Option<&str>,
    ) -> Result<String> {
        let _services_changed = self.services_changed();
        check_credential(principal, Operation::AssignShortCode)?;
        let code = short_code.ok_or_else(|| Error::missing_parameter("ShortCode"))?;
        let account_sid = account_sid.ok_or_else(|| Error::missing_parameter("AccountSid"))?;
        let account = self
            .store
            .account(account_sid)
            .await?
            .filter(|a| principal.account.is_self_or_parent_of(a))
            .ok_or_else(|| Error::invalid(21473, format!("AccountSid {account_sid} is not this main account or one of its subaccounts")))?;
        self.store
            .assign_short_code(
                &account.sid,
                &sid::generate(SidKind::ShortCode),
                code,
                &self.settings.rental_prices,
                now_micros(),
            )
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    21422,
                    format!("Short code {code} is not an unassigned short code of the inventory"),
                )
            })
    }
}
