//! Fuzzes the request parameter parser (`api::params`) and the value parsers handlers apply to
//! what it returns.
//!
//! The input is a query string and a form body, split at the first newline. Properties:
//! - `parse_form` never panics; it refuses a NUL character anywhere with a 400 / 20001, and
//!   otherwise returns parameters none of which holds a NUL;
//! - the parameters, form-encoded again and parsed, come back equal (nothing is lost or
//!   reordered);
//! - the typed readers (`bool`, `day`, paging, account status) never panic on any of them, and
//!   refuse what they cannot read with a 400.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warbler::api::params::{parse_form, Params};
use warbler::domain::account::AccountStatus;
use warbler::domain::paging::PageRequest;

fn assert_refusal(err: &warbler::error::Error) {
    assert_eq!(err.http_status(), 400, "{err:?}");
}

fn check_readers(params: &Params) {
    for (name, _) in params.pairs() {
        if let Err(err) = params.bool(name) {
            assert_refusal(&err);
        }
        // A day filter (`DateSent=`) and a bound (`DateSent<`): a span, or a 400.
        for read in [Params::date_day, Params::date_span] {
            match read(params, name) {
                Ok(Some((start, end))) => assert!(start <= end, "{name}: {start} > {end}"),
                Ok(None) => unreachable!("{name} is present"),
                Err(err) => assert_refusal(&err),
            }
        }
        if let Err(err) = params.parsed(name, AccountStatus::parse) {
            assert_refusal(&err);
        }
    }
    if let Err(err) = PageRequest::parse(
        params.get("Page"),
        params.get("PageSize"),
        params.get("PageToken"),
    ) {
        assert_refusal(&err);
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (query, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let params = match parse_form(query, body) {
        Ok(params) => params,
        Err(err) => {
            assert_eq!((err.code(), err.http_status()), (20001, 400), "{err:?}");
            return;
        }
    };
    for (name, value) in params.pairs() {
        assert!(!name.contains('\0') && !value.contains('\0'));
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.pairs())
        .finish();
    let again = parse_form(b"", encoded.as_bytes()).expect("re-encoded parameters parse");
    assert_eq!(again.pairs(), params.pairs(), "round trip through {encoded:?}");
    check_readers(&params);
});
