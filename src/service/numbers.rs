//! Phone number use cases: the operator's inventory, searching it, buying, configuring,
//! transferring and releasing numbers.

use super::{check_credential, App, Credential, Operation, Principal};
use crate::domain::number::{
    check_transfer, display_name, parse_inventory_csv, validate_field, IncomingNumber,
    InventoryNumber, NumberType, E164, NUMBER_FIELDS,
};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::numbers::{AvailableFilter, IncomingFilter, PurchaseTarget};
use std::collections::BTreeMap;

/// A purchase request.
#[derive(Debug, Default)]
pub struct Purchase<'a> {
    /// Set by the `Local`/`Mobile`/`TollFree` sub-resources.
    pub required_type: Option<NumberType>,
    pub phone_number: Option<&'a str>,
    pub area_code: Option<&'a str>,
    /// Configuration parameters as sent (`SmsUrl` → value).
    pub settings: Vec<(&'a str, &'a str)>,
}

impl Purchase<'_> {
    /// The new number's configuration: the fields' defaults, then the parameters sent
    /// (validated; an empty value unsets).
    pub(crate) fn config(&self) -> Result<BTreeMap<&'static str, String>> {
        let mut config = BTreeMap::new();
        for field in NUMBER_FIELDS {
            if let Some(default) = field.default {
                config.insert(field.column, default.to_string());
            }
        }
        for (param, raw) in &self.settings {
            if let Some(field) = NUMBER_FIELDS.iter().find(|f| f.param == *param) {
                match validate_field(field, raw)? {
                    Some(value) => config.insert(field.column, value),
                    None => config.remove(field.column),
                };
            }
        }
        Ok(config)
    }
}

/// A small demo inventory for a fresh install, so the seeds' walkthrough works at once.
/// NANP 555-01XX numbers are reserved for fictional use; +44 7700 900xxx is Ofcom's drama range.
pub fn demo_inventory() -> Vec<InventoryNumber> {
    use crate::domain::number::Capabilities;
    let all = Capabilities {
        sms: true,
        mms: true,
        voice: true,
    };
    let sms_voice = Capabilities {
        sms: true,
        mms: false,
        voice: true,
    };
    let mut numbers = Vec::new();
    let mut add = |prefix: &str,
                   count: u32,
                   country: &str,
                   kind,
                   caps,
                   locality: &str,
                   region: &str,
                   postal: &str| {
        for i in 0..count {
            numbers.push(InventoryNumber {
                phone_number: format!("{prefix}{:02}", i),
                iso_country: country.to_string(),
                number_type: kind,
                capabilities: caps,
                locality: Some(locality.to_string()).filter(|s| !s.is_empty()),
                region: Some(region.to_string()).filter(|s| !s.is_empty()),
                postal_code: Some(postal.to_string()).filter(|s| !s.is_empty()),
                route: Some("simulated".to_string()),
            });
        }
    };
    add(
        "+141555501",
        20,
        "US",
        NumberType::Local,
        all,
        "San Francisco",
        "CA",
        "94105",
    );
    add(
        "+121255501",
        10,
        "US",
        NumberType::Local,
        all,
        "New York",
        "NY",
        "10001",
    );
    add(
        "+131255501",
        10,
        "US",
        NumberType::Local,
        all,
        "Chicago",
        "IL",
        "60601",
    );
    add(
        "+180055501",
        5,
        "US",
        NumberType::TollFree,
        sms_voice,
        "",
        "",
        "",
    );
    add(
        "+160455501",
        5,
        "CA",
        NumberType::Local,
        all,
        "Vancouver",
        "BC",
        "V6B",
    );
    add(
        "+4477009001",
        5,
        "GB",
        NumberType::Mobile,
        sms_voice,
        "London",
        "",
        "",
    );
    numbers
}

impl App {
    /// Loads the demo inventory when the inventory is empty. Returns how many were added.
    pub async fn seed_demo_inventory(&self) -> Result<u64> {
        if self.store.inventory_size().await? > 0 {
            return Ok(0);
        }
        self.store
            .upsert_inventory(&demo_inventory(), now_micros())
            .await
    }

    /// Imports an inventory CSV: every row or none. Used by the CLI (no principal) and the
    /// admin endpoint (after `check_credential`).
    pub async fn import_inventory(&self, csv: &[u8]) -> Result<u64> {
        let numbers = parse_inventory_csv(csv)
            .map_err(|e| Error::invalid(20001, format!("Inventory not imported: {e}")))?;
        self.store.upsert_inventory(&numbers, now_micros()).await
    }

    /// `ImportNumberInventory` over HTTP: the main account's auth token only.
    pub async fn import_inventory_as(&self, principal: &Principal, csv: &[u8]) -> Result<u64> {
        check_credential(principal, Operation::ImportNumberInventory)?;
        self.import_inventory(csv).await
    }

    /// `ListAvailablePhoneNumberCountry`: countries with available numbers.
    pub async fn available_countries(
        &self,
        principal: &Principal,
        account_sid: &str,
        path: &str,
    ) -> Result<Vec<(String, Vec<NumberType>)>> {
        self.authorize(
            principal,
            account_sid,
            Operation::ListAvailablePhoneNumberCountry,
            path,
        )
        .await?;
        self.store.available_countries().await
    }

    /// `FetchAvailablePhoneNumberCountry`.
    pub async fn available_country(
        &self,
        principal: &Principal,
        account_sid: &str,
        country: &str,
        path: &str,
    ) -> Result<(String, Vec<NumberType>)> {
        self.authorize(
            principal,
            account_sid,
            Operation::FetchAvailablePhoneNumberCountry,
            path,
        )
        .await?;
        self.store
            .available_countries()
            .await?
            .into_iter()
            .find(|(c, _)| c == country)
            .ok_or_else(|| Error::not_found(path))
    }

    /// `ListAvailablePhoneNumberLocal` and its `Mobile` / `TollFree` siblings.
    pub async fn search_available(
        &self,
        principal: &Principal,
        account_sid: &str,
        filter: AvailableFilter,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<InventoryNumber>> {
        self.authorize(
            principal,
            account_sid,
            Operation::ListAvailablePhoneNumberLocal,
            path,
        )
        .await?;
        self.store
            .search_available(
                &filter,
                page.fetch_limit(),
                u64::from(page.page) * u64::from(page.page_size),
            )
            .await
    }

    /// `CreateIncomingPhoneNumber` (and the typed sub-resources): buys a number.
    pub async fn purchase_number(
        &self,
        principal: &Principal,
        account_sid: &str,
        purchase: Purchase<'_>,
        path: &str,
    ) -> Result<IncomingNumber> {
        if let Some(test_sid) = principal.test_sid() {
            return self.purchase_test_number(test_sid, account_sid, &purchase);
        }
        let _services_changed = self.services_changed();
        let account = self
            .authorize(
                principal,
                account_sid,
                Operation::CreateIncomingPhoneNumber,
                path,
            )
            .await?;
        let config = purchase.config()?;
        let target = match (purchase.phone_number, purchase.area_code) {
            (Some(number), _) => {
                let parsed = E164::parse(number).ok_or_else(|| {
                    Error::invalid(
                        21421,
                        format!("PhoneNumber {number:?} is not a valid phone number"),
                    )
                })?;
                if let Some(required) = purchase.required_type {
                    match self.store.inventory_type(parsed.as_str()).await? {
                        Some(kind) if kind != required => {
                            return Err(Error::invalid(
                                21458,
                                format!(
                                    "{number} is a {} number, not {}",
                                    kind.as_str(),
                                    required.as_str()
                                ),
                            ))
                        }
                        _ => {}
                    }
                }
                PurchaseTarget::Number(parsed.as_str().to_string())
            }
            (None, Some(area_code)) => {
                if area_code.len() != 3 || !area_code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::invalid_parameter("AreaCode", area_code));
                }
                PurchaseTarget::AreaCode {
                    area_code: area_code.to_string(),
                    number_type: purchase.required_type,
                }
            }
            (None, None) => {
                return Err(Error::invalid(
                    20001,
                    "A 'PhoneNumber' or 'AreaCode' is required to purchase a number",
                ))
            }
        };
        let sid = sid::generate(SidKind::PhoneNumber);
        let outcome = self
            .store
            .purchase_number(
                &account.sid,
                &sid,
                &target,
                &config,
                &display_name,
                &self.settings.rental_prices,
                now_micros(),
            )
            .await?;
        match (outcome, &target) {
            (Some(number), _) => Ok(number),
            (None, PurchaseTarget::Number(number)) => Err(Error::invalid(
                21422,
                format!("PhoneNumber {number} is not available"),
            )),
            (None, PurchaseTarget::AreaCode { area_code, .. }) => Err(Error::invalid(
                21452,
                format!("No phone numbers found in area code {area_code}"),
            )),
        }
    }

    /// `ListIncomingPhoneNumber`.
    pub async fn list_incoming(
        &self,
        principal: &Principal,
        account_sid: &str,
        filter: &IncomingFilter,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<IncomingNumber>> {
        let account = self
            .authorize(
                principal,
                account_sid,
                Operation::ListIncomingPhoneNumber,
                path,
            )
            .await?;
        self.store.list_incoming(&account.sid, filter, page).await
    }

    /// `FetchIncomingPhoneNumber`.
    pub async fn fetch_incoming(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<IncomingNumber> {
        let account = self
            .authorize(
                principal,
                account_sid,
                Operation::FetchIncomingPhoneNumber,
                path,
            )
            .await?;
        self.store
            .incoming_number(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `UpdateIncomingPhoneNumber`: configuration, and a transfer when `AccountSid` names
    /// another account (the URLs travel with the number).
    pub async fn update_incoming(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        settings: &[(&str, &str)],
        transfer_to: Option<&str>,
        path: &str,
    ) -> Result<IncomingNumber> {
        let _services_changed = self.services_changed();
        let owner = self
            .authorize(
                principal,
                account_sid,
                Operation::UpdateIncomingPhoneNumber,
                path,
            )
            .await?;
        let mut changes = Vec::new();
        for (param, raw) in settings {
            if let Some(field) = NUMBER_FIELDS.iter().find(|f| f.param == *param) {
                changes.push((field.column, validate_field(field, raw)?));
            }
        }
        let new_owner = match transfer_to {
            Some(target) if target != owner.sid => {
                let target_account = if sid::is_valid(SidKind::Account, target) {
                    self.store.account(target).await?
                } else {
                    None
                };
                let target_account = target_account.ok_or_else(|| {
                    Error::invalid(
                        21473,
                        format!("AccountSid {target} is not the parent or a subaccount of the number's account"),
                    )
                })?;
                check_transfer(
                    &principal.account,
                    principal.credential == Credential::AuthToken,
                    &owner,
                    &target_account,
                )?;
                Some(target_account.sid)
            }
            _ => None,
        };
        self.store
            .update_incoming(
                &owner.sid,
                sid,
                &changes,
                new_owner.as_deref(),
                self.settings.opt_outs_follow_number,
                now_micros(),
            )
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `DeleteIncomingPhoneNumber`: releases the number back to the inventory.
    pub async fn release_incoming(
        &self,
        principal: &Principal,
        account_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<()> {
        let _services_changed = self.services_changed();
        let account = self
            .authorize(
                principal,
                account_sid,
                Operation::DeleteIncomingPhoneNumber,
                path,
            )
            .await?;
        if self.store.release_number(&account.sid, sid).await? {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }
}
