//! Monitor alerts at request time: `ListAlert` and `FetchAlert`. The alerts are written by
//! the webhook sender (`engine::webhooks`) and the dispatcher.

use super::{App, Operation, Principal};
use crate::domain::alert::Alert;
use crate::domain::paging::PageRequest;
use crate::error::{Error, Result};
use crate::store::webhooks::AlertFilter;

impl App {
    /// `ListAlert`: the caller's alerts and, for a main account, its subaccounts'.
    pub async fn list_alerts(
        &self,
        principal: &Principal,
        filter: &AlertFilter,
        page: &PageRequest,
    ) -> Result<Vec<Alert>> {
        super::check_credential(principal, Operation::ListAlert)?;
        // As everywhere, a main account's API key does not reach its subaccounts.
        self.store
            .list_alerts(
                &principal.account.sid,
                !principal.via_api_key(),
                filter,
                page,
            )
            .await
    }

    /// `FetchAlert`.
    pub async fn fetch_alert(&self, principal: &Principal, sid: &str, path: &str) -> Result<Alert> {
        super::check_credential(principal, Operation::FetchAlert)?;
        self.store
            .alert(&principal.account.sid, !principal.via_api_key(), sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }
}
