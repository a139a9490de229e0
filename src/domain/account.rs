//! Accounts: a main (parent) account owns subaccounts; each has a status whose changes follow
//! Twilio's rules (closing is final; only the parent changes a subaccount's status).

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Suspended,
    Closed,
}

impl AccountStatus {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Closed => "closed",
        }
    }
}

/// Who asks for a status change, relative to the account being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The account's own parent, with the parent's auth token.
    Parent,
    /// The account itself (its auth token or one of its keys).
    SelfAccount,
}

/// Decides whether `target` may move from `current` to `requested`, and returns the status to
/// store (`None` when nothing changes). `is_main` marks the operator's main account, whose status
/// is managed outside the API.
pub fn plan_status_change(
    current: AccountStatus,
    requested: AccountStatus,
    actor: Actor,
    is_main: bool,
) -> Result<Option<AccountStatus>> {
    if current == AccountStatus::Closed {
        if requested == AccountStatus::Closed {
            return Ok(None);
        }
        return Err(Error::invalid(
            21479,
            "Unable to update Status for subaccount, subaccount has been closed.",
        ));
    }
    if current == requested {
        return Ok(None);
    }
    if is_main {
        return Err(Error::forbidden(
            20403,
            "The main account's status cannot be changed through the API",
        ));
    }
    if actor != Actor::Parent {
        return Err(Error::forbidden(
            20403,
            "Only the parent account can change a subaccount's status",
        ));
    }
    Ok(Some(requested))
}

/// The default name Twilio gives a subaccount created without `FriendlyName`.
pub fn default_subaccount_name(now_micros: i64) -> String {
    format!(
        "SubAccount Created at {}",
        crate::domain::time::minute_with_meridian(now_micros)
    )
}

/// `FriendlyName` for accounts: at most 64 characters, as the spec describes.
pub fn validate_friendly_name(name: &str) -> Result<&str> {
    if name.chars().count() > 64 {
        return Err(Error::invalid(
            21658,
            "FriendlyName must be at most 64 characters long",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountStatus::*;

    #[test]
    fn parent_suspends_and_reactivates_a_subaccount() {
        assert_eq!(
            plan_status_change(Active, Suspended, Actor::Parent, false).unwrap(),
            Some(Suspended)
        );
        assert_eq!(
            plan_status_change(Suspended, Active, Actor::Parent, false).unwrap(),
            Some(Active)
        );
    }

    #[test]
    fn closing_is_final() {
        assert_eq!(
            plan_status_change(Active, Closed, Actor::Parent, false).unwrap(),
            Some(Closed)
        );
        let err = plan_status_change(Closed, Active, Actor::Parent, false).unwrap_err();
        assert_eq!(err.code(), 21479);
        assert_eq!(
            plan_status_change(Closed, Suspended, Actor::Parent, false)
                .unwrap_err()
                .code(),
            21479
        );
        assert_eq!(
            plan_status_change(Closed, Closed, Actor::Parent, false).unwrap(),
            None
        );
    }

    #[test]
    fn a_subaccount_cannot_change_its_own_status() {
        let err = plan_status_change(Active, Closed, Actor::SelfAccount, false).unwrap_err();
        assert_eq!(err.http_status(), 403);
    }

    #[test]
    fn the_main_account_status_is_not_managed_by_the_api() {
        assert!(plan_status_change(Active, Suspended, Actor::SelfAccount, true).is_err());
        assert_eq!(
            plan_status_change(Active, Active, Actor::SelfAccount, true).unwrap(),
            None
        );
    }

    #[test]
    fn status_parsing_is_exact() {
        assert_eq!(AccountStatus::parse("suspended"), Some(Suspended));
        assert_eq!(AccountStatus::parse("Suspended"), None);
        assert_eq!(AccountStatus::parse(""), None);
    }

    #[test]
    fn friendly_names_are_limited_to_64_characters() {
        assert!(validate_friendly_name(&"é".repeat(64)).is_ok());
        assert_eq!(
            validate_friendly_name(&"a".repeat(65)).unwrap_err().code(),
            21658
        );
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub sid: String,
    /// The parent's SID for a subaccount; `None` for the main account.
    pub owner_account_sid: Option<String>,
    pub friendly_name: String,
    pub status: AccountStatus,
    pub auth_token: String,
    pub date_created: i64,
    pub date_updated: i64,
    /// A sandbox subaccount's messages go to the simulated carrier at no charge, whatever the
    /// routes (warbler's own; set by its parent).
    pub sandbox: bool,
}

impl Account {
    pub fn is_main(&self) -> bool {
        self.owner_account_sid.is_none()
    }

    /// The SID Twilio prints as `owner_account_sid`: the parent, or the account itself.
    pub fn owner_sid(&self) -> &str {
        self.owner_account_sid.as_deref().unwrap_or(&self.sid)
    }

    /// True when `other` is this account or one of its subaccounts.
    pub fn is_self_or_parent_of(&self, other: &Account) -> bool {
        other.sid == self.sid || other.owner_account_sid.as_deref() == Some(self.sid.as_str())
    }
}
