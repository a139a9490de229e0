//! Test credentials: reading and rotating them, and the two things they may do (create a
//! message, buy a number), answered as Twilio's magic numbers without sending, charging or
//! storing anything (see `domain::test_credentials`).

use super::messages::SendRequest;
use super::numbers::Purchase;
use super::{App, Operation, Principal};
use crate::domain::encoding::{count_segments, encoding_of, Encoding};
use crate::domain::message::{
    check_content, parse_validity_period, Direction, Message, MessageStatus, MAX_VALIDITY_PERIOD,
};
use crate::domain::number::{
    display_name, Capabilities, IncomingNumber, InventoryNumber, NumberType, E164,
};
use crate::domain::sid::{self, SidKind};
use crate::domain::test_credentials::{check_message, purchased_number, TestCredentials};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};

impl App {
    /// An account's test credentials, made when first read.
    pub async fn test_credentials(
        &self,
        principal: &Principal,
        account_sid: &str,
        path: &str,
    ) -> Result<TestCredentials> {
        let account = self
            .authorize(
                principal,
                account_sid,
                Operation::FetchTestCredentials,
                path,
            )
            .await?;
        let now = now_micros();
        let fresh = TestCredentials {
            account_sid: account.sid.clone(),
            test_account_sid: sid::generate(SidKind::Account),
            test_auth_token: sid::random_hex32(),
            date_created: now,
            date_updated: now,
        };
        self.store.test_credentials(&account.sid, &fresh).await
    }

    /// Gives an account's test credentials a new auth token (the test account SID stays).
    pub async fn rotate_test_credentials(
        &self,
        principal: &Principal,
        account_sid: &str,
        path: &str,
    ) -> Result<TestCredentials> {
        let account = self
            .authorize(
                principal,
                account_sid,
                Operation::UpdateTestCredentials,
                path,
            )
            .await?;
        let current = self.test_credentials(principal, &account.sid, path).await?;
        self.store
            .rotate_test_auth_token(&account.sid, &sid::random_hex32(), now_micros())
            .await?;
        // The old token stops working on this node at once (on others within the cache's TTL).
        self.test_credentials.forget(&current.test_account_sid);
        self.test_credentials(principal, &account.sid, path).await
    }

    /// `CreateMessage` with test credentials: the message Twilio would answer with, not stored
    /// and never sent; or the magic numbers' errors.
    pub(crate) fn create_test_message(
        &self,
        test_sid: &str,
        account_sid: &str,
        request: &SendRequest<'_>,
    ) -> Result<Message> {
        // Test credentials reach nothing but their own test account.
        if account_sid != test_sid {
            return Err(Error::Unauthenticated);
        }
        let to = request
            .to
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid(21604, "A 'To' phone number is required."))?;
        let Some(from) = request.from.filter(|f| !f.is_empty()) else {
            return Err(match request.messaging_service_sid {
                // A Messaging Service is a live resource.
                Some(service) if !service.is_empty() => Error::Unauthenticated,
                _ => Error::invalid(
                    21603,
                    "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
                ),
            });
        };
        check_message(from, to)?;
        if E164::parse(to).is_none() && !to.starts_with("+1500555") {
            return Err(Error::invalid(
                21211,
                format!("The 'To' number {to} is not a valid phone number."),
            ));
        }
        let body = request.body.unwrap_or("").to_string();
        check_content(&body, &request.media_urls, false)?;
        let validity_period = match request.validity_period {
            Some(raw) => parse_validity_period(raw)?,
            None => MAX_VALIDITY_PERIOD,
        };
        let is_mms = !request.media_urls.is_empty();
        let now = now_micros();
        Ok(Message {
            sid: sid::generate(if is_mms {
                SidKind::MmsMessage
            } else {
                SidKind::Message
            }),
            account_sid: test_sid.to_string(),
            messaging_service_sid: None,
            direction: Direction::OutboundApi,
            from: Some(from.to_string()),
            to: to.to_string(),
            encoding: match encoding_of(&body) {
                Encoding::Gsm7 => "GSM-7".into(),
                Encoding::Ucs2 => "UCS-2".into(),
            },
            num_segments: if is_mms {
                1
            } else {
                count_segments(&body).max(1) as i64
            },
            num_media: request.media_urls.len() as i64,
            body,
            status: MessageStatus::Queued,
            error_code: None,
            error_message: None,
            price: None,
            price_unit: self.settings.price_unit.clone(),
            status_callback: None,
            validity_period,
            send_at: None,
            date_created: now,
            date_updated: now,
            date_sent: None,
        })
    }

    /// `CreateIncomingPhoneNumber` with test credentials: the number Twilio would answer with,
    /// not stored; or the magic numbers' errors.
    pub(crate) fn purchase_test_number(
        &self,
        test_sid: &str,
        account_sid: &str,
        purchase: &Purchase<'_>,
    ) -> Result<IncomingNumber> {
        if account_sid != test_sid {
            return Err(Error::Unauthenticated);
        }
        let mut config = purchase.config()?;
        let number = purchased_number(purchase.phone_number, purchase.area_code)?;
        config
            .entry("friendly_name")
            .or_insert_with(|| display_name(&number));
        let now = now_micros();
        Ok(IncomingNumber {
            sid: sid::generate(SidKind::PhoneNumber),
            account_sid: test_sid.to_string(),
            inventory: InventoryNumber {
                phone_number: number,
                iso_country: "US".into(),
                number_type: purchase.required_type.unwrap_or(NumberType::Local),
                capabilities: Capabilities {
                    sms: true,
                    mms: true,
                    voice: true,
                },
                locality: None,
                region: None,
                postal_code: None,
                route: None,
            },
            config,
            date_created: now,
            date_updated: now,
        })
    }
}
