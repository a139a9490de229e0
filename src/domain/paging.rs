//! Paging as Twilio's list endpoints do it: `PageSize` (1..=1000, default 50), a page index
//! `Page`, and an opaque server-issued `PageToken` naming the last row of the previous page so
//! that pages stay stable while rows are added (keyset paging on creation time, then SID).

use crate::error::{Error, Result};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The position of a row in a list ordered by (creation time, SID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created: i64,
    pub sid: String,
}

impl Cursor {
    /// `PA` + the row's SID + `_` + its creation time: opaque to clients, checkable here.
    pub fn to_token(&self) -> String {
        format!("PA{}_{}", self.sid, self.created)
    }

    pub fn from_token(token: &str) -> Option<Cursor> {
        let body = token.strip_prefix("PA")?;
        let (sid, created) = body.split_once('_')?;
        // Checked as bytes: slicing the text at byte 2 would panic inside a multibyte
        // character (found by the `form_params` fuzz target).
        let bytes = sid.as_bytes();
        let sid_ok = bytes.len() == 34
            && bytes[..2].iter().all(u8::is_ascii_uppercase)
            && bytes[2..].iter().all(u8::is_ascii_hexdigit);
        if !sid_ok {
            return None;
        }
        Some(Cursor {
            created: created.parse().ok()?,
            sid: sid.to_string(),
        })
    }
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// Reads the raw `Page`, `PageSize` and `PageToken` query values.
    pub fn parse(page: Option<&str>, page_size: Option<&str>, token: Option<&str>) -> Result<Self> {
        let page_size = match page_size {
            None | Some("") => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.parse::<u32>() {
                Ok(0) | Err(_) => return Err(Error::invalid_parameter("PageSize", raw)),
                Ok(n) => n.min(MAX_PAGE_SIZE),
            },
        };
        let page = match page {
            None | Some("") => 0,
            Some(raw) => raw
                .parse::<u32>()
                .map_err(|_| Error::invalid_parameter("Page", raw))?,
        };
        let after = match token {
            None | Some("") => None,
            Some(raw) => Some(
                Cursor::from_token(raw)
                    .ok_or_else(|| Error::invalid_parameter("PageToken", raw))?,
            ),
        };
        Ok(PageRequest {
            page,
            page_size,
            after,
        })
    }

    /// Rows to skip when no token is given (plain `Page=N`).
    pub fn offset(&self) -> u64 {
        if self.after.is_some() {
            0
        } else {
            u64::from(self.page) * u64::from(self.page_size)
        }
    }

    /// How many rows to fetch: one more than the page, to learn whether a next page exists.
    pub fn fetch_limit(&self) -> u32 {
        self.page_size + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_with_multibyte_characters_is_refused_not_a_panic() {
        // The fuzzer's input: 34 bytes after `PA` whose third byte is inside a character.
        let token = format!("PA{}_1", "\u{fffd}".repeat(11) + "F");
        assert_eq!(token.len() - 4, 34);
        assert_eq!(Cursor::from_token(&token), None);
        let refused = PageRequest::parse(None, None, Some(&token)).unwrap_err();
        assert_eq!((refused.code(), refused.http_status()), (20001, 400));
        let sid = format!("é{}", "0".repeat(32));
        assert_eq!(Cursor::from_token(&format!("PA{sid}_1")), None);
    }

    #[test]
    fn defaults_and_clamping() {
        let p = PageRequest::parse(None, None, None).unwrap();
        assert_eq!((p.page, p.page_size, p.offset()), (0, 50, 0));
        let p = PageRequest::parse(Some("3"), Some("5000"), None).unwrap();
        assert_eq!((p.page, p.page_size, p.offset()), (3, 1000, 3000));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(PageRequest::parse(None, Some("0"), None).is_err());
        assert!(PageRequest::parse(None, Some("-1"), None).is_err());
        assert!(PageRequest::parse(Some("x"), None, None).is_err());
        assert!(PageRequest::parse(None, None, Some("PAnot-a-token")).is_err());
    }

    #[test]
    fn tokens_round_trip_and_disable_offset() {
        let cursor = Cursor {
            created: 1_700_000_000_123_456,
            sid: "AC0123456789abcdef0123456789abcdef".into(),
        };
        let token = cursor.to_token();
        assert!(token.starts_with("PAAC"));
        assert_eq!(Cursor::from_token(&token), Some(cursor));
        let p = PageRequest::parse(Some("4"), Some("10"), Some(&token)).unwrap();
        assert_eq!(p.offset(), 0);
        assert_eq!(p.fetch_limit(), 11);
    }
}
