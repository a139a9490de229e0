//! The one error type of warbler's API: each variant knows its Twilio error code and HTTP
//! status, and `render` builds the body Twilio sends (`code`, `message`, `more_info`, `status`).
//! A leaf module: every other module may import it; it imports nothing of ours.

use serde::Serialize;

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Missing, wrong, or inactive credentials (Twilio 20003, HTTP 401).
    #[error("Authenticate")]
    Unauthenticated,
    /// The credentials are valid but may not perform this operation (HTTP 403).
    #[error("{message}")]
    Forbidden { code: u32, message: String },
    /// Twilio 20404: the resource at this path does not exist (or is not visible to the caller).
    #[error("The requested resource {path} was not found")]
    NotFound { path: String },
    /// A request that breaks a rule: bad or missing parameter, forbidden state change (HTTP 400).
    #[error("{message}")]
    Invalid { code: u32, message: String },
    /// Twilio 20429: too many requests.
    #[error("Too Many Requests")]
    TooManyRequests,
    /// A cap the parent set on the account is reached (warbler extension; 20429, HTTP 429).
    #[error("{message}")]
    CapReached { message: String },
    /// The request body is larger than the configured limit (HTTP 413).
    #[error("The request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Twilio 20004: the method is not allowed on this resource.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// Twilio 20503: the database cannot take writes for now (its disk is full). Nothing was
    /// written; the same request, later, can succeed. The detail is logged, not sent.
    #[error("Service Unavailable: the server cannot store data right now (its disk is full); try again later")]
    Unavailable { detail: String },
    /// Twilio 20500: anything unexpected (database down, bug). The detail is logged, not sent.
    #[error("Internal Server Error")]
    Internal {
        detail: String,
        /// A conflict with a concurrent transaction (deadlock, serialization failure): the
        /// same work, tried again, can succeed.
        transient: bool,
    },
}

/// The JSON body of an error, in Twilio's shape.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: u32,
    pub message: String,
    pub more_info: String,
    pub status: u16,
}

impl Error {
    pub fn invalid(code: u32, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: u32, message: impl Into<String>) -> Self {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(path: impl Into<String>) -> Self {
        Error::NotFound { path: path.into() }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal {
            detail: detail.to_string(),
            transient: false,
        }
    }

    /// Whether the failure was a conflict with a concurrent transaction, worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Internal {
                transient: true,
                ..
            }
        )
    }

    /// A required parameter is absent (Twilio 21604 family uses specific codes; this is the
    /// generic "Missing required parameter" 20001 form).
    pub fn missing_parameter(name: &str) -> Self {
        Error::invalid(
            20001,
            format!("Missing required parameter {name} in the post body"),
        )
    }

    /// A parameter has a value outside its type or enumeration (Twilio 20001).
    pub fn invalid_parameter(name: &str, value: &str) -> Self {
        Error::invalid(
            20001,
            format!("Invalid value '{value}' for parameter {name}"),
        )
    }

    pub fn code(&self) -> u32 {
        match self {
            Error::Unauthenticated => 20003,
            Error::Forbidden { code, .. } | Error::Invalid { code, .. } => *code,
            Error::NotFound { .. } => 20404,
            Error::TooManyRequests | Error::CapReached { .. } => 20429,
            // Twilio documents no code for an oversized body; 20001 is its generic "invalid request".
            Error::PayloadTooLarge { .. } => 20001,
            Error::MethodNotAllowed => 20004,
            Error::Unavailable { .. } => 20503,
            Error::Internal { .. } => 20500,
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Error::Unauthenticated => 401,
            Error::Forbidden { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::Invalid { .. } => 400,
            Error::TooManyRequests | Error::CapReached { .. } => 429,
            Error::PayloadTooLarge { .. } => 413,
            Error::MethodNotAllowed => 405,
            Error::Unavailable { .. } => 503,
            Error::Internal { .. } => 500,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let code = self.code();
        ErrorBody {
            code,
            message: self.to_string(),
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
            status: self.http_status(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        let code = err.as_database_error().and_then(|db| db.code());
        if code.as_deref().is_some_and(out_of_space) {
            return Error::Unavailable {
                detail: format!("database: {err}"),
            };
        }
        // PostgreSQL's serialization_failure and deadlock_detected.
        let transient = code.is_some_and(|code| code == "40001" || code == "40P01");
        Error::Internal {
            detail: format!("database: {err}"),
            transient,
        }
    }
}

/// The native SQLite reads' errors (`store::native`), as sqlx's are told apart.
impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        let full = matches!(
            &err,
            rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::DiskFull
        );
        if full {
            return Error::Unavailable {
                detail: format!("database: {err}"),
            };
        }
        Error::Internal {
            detail: format!("database: {err}"),
            transient: false,
        }
    }
}

/// Whether a database error code says the disk (or the database's size limit) is full:
/// SQLite's SQLITE_FULL (13, with any extended code), PostgreSQL's disk_full (53100).
fn out_of_space(code: &str) -> bool {
    code == "53100" || code.parse::<i64>().is_ok_and(|code| code & 0xff == 13)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_from_other_database_errors() {
        for full in ["13", "53100"] {
            assert!(out_of_space(full), "{full}");
        }
        for other in ["10", "5", "40001", "23505", "SQLITE_FULL"] {
            assert!(!out_of_space(other), "{other}");
        }
        let err = Error::Unavailable {
            detail: "database: full".into(),
        };
        assert_eq!((err.code(), err.http_status()), (20503, 503));
        assert!(
            !err.body().message.contains("database: full"),
            "the detail is not sent"
        );
    }

    #[test]
    fn not_found_body_is_twilio_shaped() {
        let body = Error::not_found("/2010-04-01/Accounts/AC00.json").body();
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": 20404,
                "message": "The requested resource /2010-04-01/Accounts/AC00.json was not found",
                "more_info": "https://www.twilio.com/docs/errors/20404",
                "status": 404
            })
        );
    }

    #[test]
    fn authentication_failure_is_20003_with_401() {
        let json = serde_json::to_value(Error::Unauthenticated.body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401
            })
        );
    }

    #[test]
    fn validation_errors_carry_their_own_code_and_400() {
        let err = Error::invalid(21101, "Subaccounts cannot create subaccounts");
        assert_eq!((err.code(), err.http_status()), (21101, 400));
        assert_eq!(err.body().message, "Subaccounts cannot create subaccounts");
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let body = Error::internal("connection refused at 10.0.0.3").body();
        assert_eq!(body.message, "Internal Server Error");
        assert_eq!((body.code, body.status), (20500, 500));
    }
}
