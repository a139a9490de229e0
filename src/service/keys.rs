//! API key use cases. The secret is returned once, at creation; only its hash is stored.

use super::{check_credential, App, Operation, Principal};
use crate::domain::credential::{generate_key_secret, hash_key_secret, ApiKey};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};

impl App {
    /// `CreateNewKey`: returns the stored key and its secret.
    pub async fn create_key(
        &self,
        principal: &Principal,
        account_sid: &str,
        friendly_name: Option<&str>,
        path: &str,
    ) -> Result<(ApiKey, String)> {
        let account = self
            .authorize(principal, account_sid, Operation::CreateNewKey, path)
            .await?;
        if let Some(name) = friendly_name {
            validate_key_name(name)?;
        }
        let secret = generate_key_secret();
        let now = now_micros();
        let key = ApiKey {
            sid: sid::generate(SidKind::ApiKey),
            account_sid: account.sid,
            friendly_name: friendly_name.map(str::to_string),
            secret_hash: hash_key_secret(&self.settings.key_pepper, &secret),
            date_created: now,
            date_updated: now,
        };
        let cap = self.settings.max_keys_per_account;
        if !self.store.insert_key_capped(&key, cap).await? {
            return Err(Error::invalid(
                20001,
                format!("Reached the maximum number of API keys for this account ({cap})"),
            ));
        }
        self.unknown_sids.forget(&key.sid);
        Ok((key, secret))
    }

    /// `ListKey`.
    pub async fn list_keys(
        &self,
        principal: &Principal,
        account_sid: &str,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<ApiKey>> {
        let account = self
            .authorize(principal, account_sid, Operation::ListKey, path)
            .await?;
        self.store.list_keys(&account.sid, page).await
    }

    /// `FetchKey`.
    pub async fn fetch_key(
        &self,
        principal: &Principal,
        account_sid: &str,
        key_sid: &str,
        path: &str,
    ) -> Result<ApiKey> {
        let account = self
            .authorize(principal, account_sid, Operation::FetchKey, path)
            .await?;
        self.store
            .account_key(&account.sid, key_sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `UpdateKey`: only the friendly name changes.
    pub async fn rename_key(
        &self,
        principal: &Principal,
        account_sid: &str,
        key_sid: &str,
        friendly_name: Option<&str>,
        path: &str,
    ) -> Result<ApiKey> {
        let account = self
            .authorize(principal, account_sid, Operation::UpdateKey, path)
            .await?;
        let Some(name) = friendly_name else {
            return self
                .store
                .account_key(&account.sid, key_sid)
                .await?
                .ok_or_else(|| Error::not_found(path));
        };
        validate_key_name(name)?;
        self.store
            .rename_key(&account.sid, key_sid, name, now_micros())
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// The account owning `key_sid`, for the IAM v1 routes that name a key by its SID alone
    /// (`/v1/Keys/{Sid}`): the caller's own keys or, with a main account's auth token, its
    /// subaccounts'. Another account's key is not found, like one that does not exist.
    pub async fn key_account(
        &self,
        principal: &Principal,
        key_sid: &str,
        operation: Operation,
        path: &str,
    ) -> Result<String> {
        check_credential(principal, operation)?;
        let key = self
            .store
            .key(key_sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        match self
            .authorize(principal, &key.account_sid, operation, path)
            .await
        {
            Ok(account) => Ok(account.sid),
            Err(Error::Unauthenticated) => Err(Error::not_found(path)),
            Err(other) => Err(other),
        }
    }

    /// `DeleteKey`: the key stops authenticating at once on this node, and within the key
    /// cache's second on the others.
    pub async fn delete_key(
        &self,
        principal: &Principal,
        account_sid: &str,
        key_sid: &str,
        path: &str,
    ) -> Result<()> {
        let account = self
            .authorize(principal, account_sid, Operation::DeleteKey, path)
            .await?;
        let deleted = self.store.delete_key(&account.sid, key_sid).await?;
        self.keys.forget(key_sid);
        if deleted {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }
}

fn validate_key_name(name: &str) -> Result<()> {
    if name.chars().count() > 64 {
        return Err(Error::invalid(
            21658,
            "FriendlyName must be at most 64 characters long",
        ));
    }
    Ok(())
}
