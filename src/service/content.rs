//! Content API use cases: templates of one account, and rendering one for a send.

use super::{App, Operation, Principal};
use crate::domain::content::{
    check_names, parse_content_variables, parse_default_variables, ContentTemplate, ContentTypes,
    Rendered, MAX_TEMPLATES_PER_ACCOUNT,
};
use crate::domain::paging::PageRequest;
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::error::{Error, Result};
use serde_json::Value;

/// A `CreateContent` request body (JSON, as the SDKs send it).
pub struct NewContent<'a> {
    pub friendly_name: Option<&'a str>,
    pub language: Option<&'a str>,
    pub variables: Option<&'a Value>,
    pub types: Option<&'a Value>,
}

impl App {
    /// `CreateContent`, in the caller's account.
    pub async fn create_content(
        &self,
        principal: &Principal,
        request: NewContent<'_>,
        path: &str,
    ) -> Result<ContentTemplate> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::CreateContent,
                path,
            )
            .await?;
        let friendly_name = request.friendly_name.unwrap_or_default();
        let language = request.language.unwrap_or_default();
        check_names(friendly_name, language)?;
        let types = ContentTypes::parse(
            request
                .types
                .ok_or_else(|| Error::missing_parameter("types"))?,
        )?;
        let now = now_micros();
        let template = ContentTemplate {
            sid: sid::generate(SidKind::Content),
            account_sid: account.sid,
            friendly_name: friendly_name.to_string(),
            language: language.to_string(),
            variables: parse_default_variables(request.variables)?,
            types,
            date_created: now,
            date_updated: now,
        };
        if !self
            .store
            .insert_content_capped(&template, MAX_TEMPLATES_PER_ACCOUNT)
            .await?
        {
            return Err(Error::invalid(
                20001,
                format!(
                    "Reached the maximum number of Content templates for this account ({MAX_TEMPLATES_PER_ACCOUNT})"
                ),
            ));
        }
        Ok(template)
    }

    /// `ListContent`: the caller's account's templates.
    pub async fn list_content(
        &self,
        principal: &Principal,
        page: &PageRequest,
        path: &str,
    ) -> Result<Vec<ContentTemplate>> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::ListContent,
                path,
            )
            .await?;
        self.store.list_content(&account.sid, page).await
    }

    /// `FetchContent`.
    pub async fn fetch_content(
        &self,
        principal: &Principal,
        sid: &str,
        path: &str,
    ) -> Result<ContentTemplate> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::FetchContent,
                path,
            )
            .await?;
        self.store
            .content(&account.sid, sid)
            .await?
            .ok_or_else(|| Error::not_found(path))
    }

    /// `DeleteContent`.
    pub async fn delete_content(&self, principal: &Principal, sid: &str, path: &str) -> Result<()> {
        let account = self
            .authorize(
                principal,
                &principal.account.sid,
                Operation::DeleteContent,
                path,
            )
            .await?;
        if self.store.delete_content(&account.sid, sid).await? {
            Ok(())
        } else {
            Err(Error::not_found(path))
        }
    }

    /// The body and media of a send with `ContentSid`: the sending account's template,
    /// rendered with `ContentVariables` (21655 for a template it does not have, 21656 for bad
    /// or missing variables).
    pub(super) async fn render_content(
        &self,
        account_sid: &str,
        content_sid: &str,
        content_variables: Option<&str>,
    ) -> Result<Rendered> {
        let unknown = || Error::invalid(21655, format!("The ContentSid {content_sid} is invalid"));
        if !sid::is_valid(SidKind::Content, content_sid) {
            return Err(unknown());
        }
        let supplied = parse_content_variables(content_variables.unwrap_or_default())?;
        let template = self
            .store
            .content(account_sid, content_sid)
            .await?
            .ok_or_else(unknown)?;
        template.render(&supplied)
    }
}
