//! Fuzzes the messaging TwiML parser (`domain::twiml`), which reads whatever a tenant's webhook
//! answers.
//!
//! Properties, on any text: `parse` never panics; a `<Redirect>` it accepts has a URL and a
//! GET or POST method.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warbler::domain::twiml::{parse, Verb};

fuzz_target!(|data: &[u8]| {
    let document = String::from_utf8_lossy(data);
    let Ok(verbs) = parse(&document) else {
        return;
    };
    for verb in verbs {
        if let Verb::Redirect { url, method } = verb {
            assert!(!url.is_empty());
            assert!(method == "GET" || method == "POST", "{method}");
        }
    }
});
