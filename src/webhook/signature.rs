//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted form parameters)).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Signs a form-encoded webhook. `url` is the full configured URL including its query string;
/// `params` are the form fields. Names are sorted by byte order; a repeated name contributes
/// each distinct value in sorted order, as the official validators rebuild it.
pub fn sign_form(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac = hmac_for(auth_token);
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Signs a JSON-body webhook: the URL with `bodySHA256=<hex sha256 of body>` appended, and no
/// parameters. Returns the URL to send to and the signature.
pub fn sign_json(auth_token: &str, url: &str, body: &str) -> (String, String) {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    let separator = if url.contains('?') { '&' } else { '?' };
    let signed_url = format!("{url}{separator}bodySHA256={hash}");
    let signature = sign_payload(auth_token, &signed_url);
    (signed_url, signature)
}

fn hmac_for(auth_token: &str) -> Hmac<Sha1> {
    // HMAC accepts keys of any length, so this cannot fail.
    Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

fn sign_payload(auth_token: &str, payload: &str) -> String {
    let mut mac = hmac_for(auth_token);
    mac.update(payload.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the official SDKs' request-validator tests (token "12345").
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[test]
    fn official_json_body_vector() {
        let (url, signature) = sign_json("12345", URL, r#"{"property": "value", "boolean": true}"#);
        assert_eq!(
            url,
            format!(
                "{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
            )
        );
        assert_eq!(signature, "a9nBmqA0ju/hNViExpshrM61xv4=");
    }

    #[test]
    fn official_form_vector() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            sign_form("12345", URL, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            sign_form(
                "12345",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &params
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
    }

    #[test]
    fn repeated_values_are_sorted_and_deduplicated() {
        let params = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ];
        assert_eq!(
            sign_form("12345", URL, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn parameter_order_does_not_matter_but_values_do() {
        let a = sign_form("t", "https://x/y", &[("A", "1"), ("B", "2")]);
        let b = sign_form("t", "https://x/y", &[("B", "2"), ("A", "1")]);
        assert_eq!(a, b);
        assert_ne!(a, sign_form("t", "https://x/y", &[("A", "1"), ("B", "3")]));
        assert_ne!(a, sign_form("u", "https://x/y", &[("A", "1"), ("B", "2")]));
    }
}
