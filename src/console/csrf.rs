//! CSRF protection: every form carries the session's random token, and `Post` (the only way a
//! console handler reads a form) refuses a POST whose token does not match. The cookie's
//! SameSite=Strict is a second line, not the only one.

use super::session::Ctx;
use super::ConsoleState;
use crate::domain::credential::secrets_match;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

pub const FIELD: &str = "csrf";
/// Console forms are small; a bigger body is refused before it is read whole.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The hidden field every console form includes.
pub fn field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(ctx.session.csrf_token); }
}

/// A URL-encoded form body, in order, with its keys as sent.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The value of `name` as sent (blank included): for settings where blank means unset.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

pub async fn read_body(request: Request) -> Result<Vec<u8>, Response> {
    axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|_| {
            super::page_error(
                None,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.",
            )
        })
}

/// A logged-in user's form submission whose CSRF token matched.
pub struct Post {
    pub ctx: Ctx,
    pub fields: Fields,
}

impl FromRequest<ConsoleState> for Post {
    type Rejection = Response;

    async fn from_request(request: Request, state: &ConsoleState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state).await?;
        let body = read_body(Request::from_parts(parts, body)).await?;
        let fields = Fields::parse(&body);
        let presented = fields.raw(FIELD).unwrap_or_default();
        if !secrets_match(&ctx.session.csrf_token, presented) {
            return Err(super::page_error(
                Some(&ctx),
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from the console. Go back, reload the page and try again.",
            ));
        }
        Ok(Post { ctx, fields })
    }
}
