//! US A2P 10DLC registration use cases: an account's brands and its services' campaigns, the
//! operator's review that moves them through Twilio's statuses (warbler cannot reach The
//! Campaign Registry), and the event sink their status changes are reported to.

use super::{check_credential, App, Operation, Principal};
use crate::domain::a2p::{
    registry_id, usecases_for, validate_brand_type, validate_bundle_sid, validate_usecase, Brand,
    BrandStatus, Campaign, CampaignDetails, CampaignStatus, Usecase,
};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use crate::store::a2p::Review;

/// Brands one account may hold.
pub const MAX_BRANDS_PER_ACCOUNT: u32 = 100;

/// A `CreateBrandRegistrations` request.
pub struct BrandRequest<'a> {
    pub customer_profile_bundle_sid: Option<&'a str>,
    pub a2p_profile_bundle_sid: Option<&'a str>,
    pub brand_type: Option<&'a str>,
    pub mock: Option<bool>,
    pub skip_automatic_sec_vet: Option<bool>,
}

/// A `CreateUsAppToPerson` request.
pub struct CampaignRequest<'a> {
    pub brand_registration_sid: Option<&'a str>,
    pub usecase: Option<&'a str>,
    pub details: CampaignDetails,
}

/// What the operator decides about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Suspend,
}

impl Decision {
    pub fn parse(raw: &str) -> Option<Decision> {
        Some(match raw.to_ascii_lowercase().as_str() {
            "approve" | "approved" | "verified" => Decision::Approve,
            "reject" | "rejected" | "failed" => Decision::Reject,
            "suspend" | "suspended" => Decision::Suspend,
            _ => return None,
        })
    }
}

/// The operator's review of one record.
pub struct ReviewRequest<'a> {
    pub decision: Decision,
    pub reason: Option<&'a str>,
    pub error_code: Option<i64>,
}

impl ReviewRequest<'_> {
    fn check(&self) -> Result<()> {
        if self.decision == Decision::Reject && self.reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(Error::missing_parameter("FailureReason"));
        }
        if let Some(reason) = self.reason {
            if reason.chars().count() > 1024 {
                return Err(Error::invalid(
                    20001,
                    "FailureReason is over 1024 characters",
                ));
            }
        }
        if let Some(code) = self.error_code {
            if !(10000..100000).contains(&code) {
                return Err(Error::invalid_parameter("ErrorCode", &code.to_string()));
            }
        }
        Ok(())
    }
}

/// A registration record: one the operator reviews (brand or campaign).
pub enum Registration {
    Brand(Brand),
    Campaign(Box<Campaign>),
}

impl App {
    /// `CreateBrandRegistrations`, in the caller's account. Mock brands are approved at once
    /// (Twilio's mock brands are for testing and never reach the registry).
    pub async fn create_brand(
        &self,
        principal: &Principal,
        request: BrandRequest<'_>,
    ) -> Result<Brand> {
        check_credential(principal, Operation::CreateBrandRegistrations)?;
        let customer = request
            .customer_profile_bundle_sid
            .ok_or_else(|| Error::missing_parameter("CustomerProfileBundleSid"))?;
        let a2p = request
            .a2p_profile_bundle_sid
            .ok_or_else(|| Error::missing_parameter("A2PProfileBundleSid"))?;
        let now = now_micros();
        let brand = Brand {
            sid: sid::generate(SidKind::BrandRegistration),
            account_sid: principal.account.sid.clone(),
            customer_profile_bundle_sid: validate_bundle_sid("CustomerProfileBundleSid", customer)?,
            a2p_profile_bundle_sid: validate_bundle_sid("A2PProfileBundleSid", a2p)?,
            brand_type: validate_brand_type(request.brand_type.unwrap_or("STANDARD"))?.to_string(),
            status: BrandStatus::Pending,
            tcr_id: None,
            failure_reason: None,
            failure_code: None,
            mock: request.mock.unwrap_or(false),
            skip_automatic_sec_vet: request.skip_automatic_sec_vet.unwrap_or(false),
            date_created: now,
            date_updated: now,
        };
        if !self
            .store
            .insert_brand_capped(&brand, MAX_BRANDS_PER_ACCOUNT)
            .await?
        {
            return Err(Error::invalid(
                20001,
                format!("Reached the maximum number of brand registrations for this account ({MAX_BRANDS_PER_ACCOUNT})"),
            ));
        }
        if brand.mock {
            let approve = ReviewRequest {
                decision: Decision::Approve,
                reason: None,
                error_code: None,
            };
            return self.review_brand(&brand.sid, &approve).await;
        }
        Ok(brand)
    }

    pub async fn list_brands(
        &self,
        principal: &Principal,
        page: &PageRequest,
    ) -> Result<Vec<Brand>> {
        check_credential(principal, Operation::ListBrandRegistrations)?;
        self.store.list_brands(&principal.account.sid, page).await
    }

    pub async fn fetch_brand(&self, principal: &Principal, sid: &str, path: &str) -> Result<Brand> {
        check_credential(principal, Operation::FetchBrandRegistrations)?;
        self.store
            .brand(Some(&principal.account.sid), sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `UpdateBrandRegistrations`: submits a FAILED brand again (Twilio answers 202); a brand
    /// in any other status is returned unchanged.
    pub async fn resubmit_brand(
        &self,
        principal: &Principal,
        sid: &str,
        path: &str,
    ) -> Result<Brand> {
        check_credential(principal, Operation::UpdateBrandRegistrations)?;
        let account = &principal.account.sid;
        self.store
            .resubmit_brand(account, sid, now_micros())
            .await?;
        self.store
            .brand(Some(account), sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `CreateUsAppToPerson`: the service's campaign, on an APPROVED brand of the same
    /// account. A mock brand's campaign is verified at once.
    pub async fn create_campaign(
        &self,
        principal: &Principal,
        service_sid: &str,
        request: CampaignRequest<'_>,
        path: &str,
    ) -> Result<Campaign> {
        let service = self
            .own_service(principal, Operation::CreateUsAppToPerson, service_sid, path)
            .await?;
        let brand_sid = request
            .brand_registration_sid
            .ok_or_else(|| Error::missing_parameter("BrandRegistrationSid"))?;
        let usecase = validate_usecase(
            request
                .usecase
                .ok_or_else(|| Error::missing_parameter("UsAppToPersonUsecase"))?,
        )?;
        request.details.validate()?;
        let brand = self
            .store
            .brand(Some(&service.account_sid), brand_sid)
            .await?
            .ok_or_else(|| Error::invalid_parameter("BrandRegistrationSid", brand_sid))?;
        if brand.status != BrandStatus::Approved {
            return Err(Error::invalid(
                20001,
                format!(
                    "Brand {} is {}: a campaign needs an APPROVED brand",
                    brand.sid,
                    brand.status.as_str()
                ),
            ));
        }
        if !usecases_for(Some(&brand.brand_type))
            .iter()
            .any(|u| u.code == usecase)
        {
            return Err(Error::invalid(
                20001,
                format!(
                    "Use case {usecase} is not available to a {} brand",
                    brand.brand_type
                ),
            ));
        }
        let now = now_micros();
        let campaign = Campaign {
            sid: sid::generate(SidKind::UsAppToPerson),
            account_sid: service.account_sid.clone(),
            messaging_service_sid: service.sid.clone(),
            brand_registration_sid: brand.sid.clone(),
            usecase: usecase.to_string(),
            status: CampaignStatus::Pending,
            campaign_id: None,
            failure_reason: None,
            failure_code: None,
            mock: brand.mock,
            details: request.details,
            date_created: now,
            date_updated: now,
        };
        if !self.store.insert_campaign(&campaign).await? {
            return Err(Error::invalid(
                20001,
                format!(
                    "Messaging Service {} already has a campaign: delete it first",
                    service.sid
                ),
            ));
        }
        if campaign.mock {
            let approve = ReviewRequest {
                decision: Decision::Approve,
                reason: None,
                error_code: None,
            };
            return self.review_campaign(&campaign.sid, &approve).await;
        }
        Ok(campaign)
    }

    /// `ListUsAppToPerson`: the service's campaign, if any.
    pub async fn list_campaigns(
        &self,
        principal: &Principal,
        service_sid: &str,
        path: &str,
    ) -> Result<Vec<Campaign>> {
        let service = self
            .own_service(principal, Operation::ListUsAppToPerson, service_sid, path)
            .await?;
        Ok(self
            .store
            .service_campaign(&service.sid)
            .await?
            .into_iter()
            .collect())
    }

    pub async fn fetch_campaign(
        &self,
        principal: &Principal,
        service_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<Campaign> {
        let service = self
            .own_service(principal, Operation::FetchUsAppToPerson, service_sid, path)
            .await?;
        self.store
            .service_campaign(&service.sid)
            .await?
            .filter(|c| c.sid == sid)
            .ok_or_else(|| Error::not_found(path))
    }

    /// `UpdateUsAppToPerson`: new text for the campaign (its status stays).
    pub async fn update_campaign(
        &self,
        principal: &Principal,
        service_sid: &str,
        sid: &str,
        details: CampaignDetails,
        path: &str,
    ) -> Result<Campaign> {
        let service = self
            .own_service(principal, Operation::UpdateUsAppToPerson, service_sid, path)
            .await?;
        details.validate()?;
        let current = self
            .store
            .service_campaign(&service.sid)
            .await?
            .filter(|c| c.sid == sid)
            .ok_or_else(|| Error::not_found(path))?;
        // Fields the update does not carry keep their registered values.
        let merged = CampaignDetails {
            subscriber_opt_in: details
                .subscriber_opt_in
                .or(current.details.subscriber_opt_in),
            opt_in_message: current.details.opt_in_message.clone(),
            opt_out_message: current.details.opt_out_message.clone(),
            help_message: current.details.help_message.clone(),
            opt_in_keywords: current.details.opt_in_keywords.clone(),
            opt_out_keywords: current.details.opt_out_keywords.clone(),
            help_keywords: current.details.help_keywords.clone(),
            privacy_policy_url: details
                .privacy_policy_url
                .clone()
                .or(current.details.privacy_policy_url.clone()),
            terms_and_conditions_url: details
                .terms_and_conditions_url
                .clone()
                .or(current.details.terms_and_conditions_url.clone()),
            ..details
        };
        self.store
            .update_campaign_details(
                &service.account_sid,
                &service.sid,
                sid,
                &merged,
                now_micros(),
            )
            .await?;
        self.store
            .service_campaign(&service.sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `DeleteUsAppToPerson`: the service is no longer registered.
    pub async fn delete_campaign(
        &self,
        principal: &Principal,
        service_sid: &str,
        sid: &str,
        path: &str,
    ) -> Result<()> {
        let service = self
            .own_service(principal, Operation::DeleteUsAppToPerson, service_sid, path)
            .await?;
        if self
            .store
            .delete_campaign(&service.account_sid, &service.sid, sid)
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }

    /// `FetchUsAppToPersonUsecase`: the use cases open to the brand (all, without one).
    pub async fn campaign_usecases(
        &self,
        principal: &Principal,
        service_sid: &str,
        brand_sid: Option<&str>,
        path: &str,
    ) -> Result<Vec<&'static Usecase>> {
        let service = self
            .own_service(
                principal,
                Operation::FetchUsAppToPersonUsecase,
                service_sid,
                path,
            )
            .await?;
        let brand_type = match brand_sid {
            Some(brand_sid) => Some(
                self.store
                    .brand(Some(&service.account_sid), brand_sid)
                    .await?
                    .ok_or_else(|| Error::invalid_parameter("BrandRegistrationSid", brand_sid))?
                    .brand_type,
            ),
            None => None,
        };
        Ok(usecases_for(brand_type.as_deref()))
    }

    /// Whether the service has a VERIFIED campaign (its `us_app_to_person_registered`).
    pub async fn service_registered(&self, service_sid: &str) -> Result<bool> {
        Ok(self
            .store
            .service_campaign(service_sid)
            .await?
            .is_some_and(|c| c.status == CampaignStatus::Verified))
    }

    /// Which of `services` have a VERIFIED campaign.
    pub async fn registered_services(
        &self,
        services: &[&str],
    ) -> Result<std::collections::HashSet<String>> {
        self.store.registered_services(services).await
    }

    /// The account's event sink URL (`None`: no events are sent).
    pub async fn a2p_event_sink(
        &self,
        principal: &Principal,
        account_sid: &str,
        path: &str,
    ) -> Result<Option<String>> {
        let account = self
            .authorize(principal, account_sid, Operation::FetchA2pEventSink, path)
            .await?;
        self.store.a2p_event_sink(&account.sid).await
    }

    /// Sets the account's event sink (an empty `url` removes it).
    pub async fn set_a2p_event_sink(
        &self,
        principal: &Principal,
        account_sid: &str,
        url: Option<String>,
        path: &str,
    ) -> Result<Option<String>> {
        let account = self
            .authorize(principal, account_sid, Operation::UpdateA2pEventSink, path)
            .await?;
        self.store
            .set_a2p_event_sink(&account.sid, url.as_deref(), now_micros())
            .await?;
        Ok(url)
    }

    /// The operator's queue: brands and campaigns awaiting review, oldest first.
    pub async fn pending_registrations(&self, limit: i64) -> Result<Vec<Registration>> {
        let (brands, campaigns) = self.store.pending_registrations(limit).await?;
        Ok(brands
            .into_iter()
            .map(Registration::Brand)
            .chain(
                campaigns
                    .into_iter()
                    .map(|c| Registration::Campaign(Box::new(c))),
            )
            .collect())
    }

    /// The operator's review through the API: the main account's auth token only.
    pub async fn review_registration(
        &self,
        principal: &Principal,
        sid: &str,
        request: &ReviewRequest<'_>,
        path: &str,
    ) -> Result<Registration> {
        check_credential(principal, Operation::ReviewA2pRegistration)?;
        if sid.starts_with(SidKind::BrandRegistration.prefix()) {
            self.review_brand(sid, request)
                .await
                .map(Registration::Brand)
        } else if sid.starts_with(SidKind::UsAppToPerson.prefix()) {
            self.review_campaign(sid, request)
                .await
                .map(|c| Registration::Campaign(Box::new(c)))
        } else {
            Err(Error::not_found(path))
        }
    }

    /// The operator's queue through the API.
    pub async fn list_pending_registrations(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Registration>> {
        check_credential(principal, Operation::ListA2pRegistrationReviews)?;
        self.pending_registrations(1000).await
    }

    /// Moves a brand as the operator decided (the CLI calls this directly). A brand
    /// suspended takes its campaigns' traffic down with it: campaigns need an APPROVED brand.
    pub async fn review_brand(&self, sid: &str, request: &ReviewRequest<'_>) -> Result<Brand> {
        request.check()?;
        let brand = self
            .store
            .brand(None, sid)
            .await?
            .ok_or_else(|| Error::not_found(format!("/v1/a2p/BrandRegistrations/{sid}")))?;
        let to = match request.decision {
            Decision::Approve => BrandStatus::Approved,
            Decision::Reject => BrandStatus::Failed,
            Decision::Suspend => BrandStatus::Suspended,
        };
        if !brand.status.may_become(to) {
            return Err(Error::invalid(
                20001,
                format!(
                    "Brand {sid} is {}: it cannot become {}",
                    brand.status.as_str(),
                    to.as_str()
                ),
            ));
        }
        let review = Review {
            sid,
            from: brand.status.as_str(),
            to: to.as_str(),
            registry_id: (to == BrandStatus::Approved).then(|| registry_id('B', sid)),
            failure_reason: request.reason.map(str::to_string),
            failure_code: request.error_code,
            now: now_micros(),
        };
        let reviewed = self.store.review_brand(&review).await?.ok_or_else(|| {
            Error::invalid(
                20001,
                format!("Brand {sid} changed status meanwhile: review it again"),
            )
        })?;
        if to == BrandStatus::Suspended {
            // Its verified campaigns stop too.
            self.suspend_campaigns_of_brand(sid, request).await?;
        }
        self.webhook_work.notify_one();
        Ok(reviewed)
    }

    async fn suspend_campaigns_of_brand(
        &self,
        brand_sid: &str,
        request: &ReviewRequest<'_>,
    ) -> Result<()> {
        for campaign in self.store.campaigns_of_brand(brand_sid).await? {
            if campaign.status == CampaignStatus::Verified {
                let review = Review {
                    sid: &campaign.sid,
                    from: campaign.status.as_str(),
                    to: CampaignStatus::Suspended.as_str(),
                    registry_id: None,
                    failure_reason: request.reason.map(str::to_string),
                    failure_code: request.error_code,
                    now: now_micros(),
                };
                self.store.review_campaign(&review).await?;
            }
        }
        Ok(())
    }

    /// Moves a campaign as the operator decided (the CLI calls this directly).
    pub async fn review_campaign(
        &self,
        sid: &str,
        request: &ReviewRequest<'_>,
    ) -> Result<Campaign> {
        request.check()?;
        let campaign = self
            .store
            .campaign(None, sid)
            .await?
            .ok_or_else(|| Error::not_found(format!("/v1/Services/Compliance/Usa2p/{sid}")))?;
        let to = match request.decision {
            Decision::Approve => CampaignStatus::Verified,
            Decision::Reject => CampaignStatus::Failed,
            Decision::Suspend => CampaignStatus::Suspended,
        };
        if !campaign.status.may_become(to) {
            return Err(Error::invalid(
                20001,
                format!(
                    "Campaign {sid} is {}: it cannot become {}",
                    campaign.status.as_str(),
                    to.as_str()
                ),
            ));
        }
        if to == CampaignStatus::Verified {
            let brand = self
                .store
                .brand(None, &campaign.brand_registration_sid)
                .await?;
            if brand.is_none_or(|b| b.status != BrandStatus::Approved) {
                return Err(Error::invalid(
                    20001,
                    format!("Campaign {sid}'s brand is not APPROVED"),
                ));
            }
        }
        let review = Review {
            sid,
            from: campaign.status.as_str(),
            to: to.as_str(),
            registry_id: (to == CampaignStatus::Verified).then(|| registry_id('C', sid)),
            failure_reason: request.reason.map(str::to_string),
            failure_code: request.error_code,
            now: now_micros(),
        };
        let reviewed = self.store.review_campaign(&review).await?.ok_or_else(|| {
            Error::invalid(
                20001,
                format!("Campaign {sid} changed status meanwhile: review it again"),
            )
        })?;
        self.webhook_work.notify_one();
        Ok(reviewed)
    }
}
