//! Keeping a database URL's password out of what warbler prints: a URL may carry it in its
//! user information (`postgres://user:pass@host/db`) or as a query parameter
//! (`?password=…`, which sqlx accepts too). Pure text functions; no I/O.

const MASK: &str = "***";

/// Secrets shorter than this are not scrubbed from free text: replacing every `a` of a message
/// would make it unreadable, and a password that short protects nothing anyway.
const SHORTEST_SCRUBBED_SECRET: usize = 4;

/// The URL with its password (user information and `password`-like query parameters) masked;
/// everything else is kept as written, so the operator still sees which server was meant.
pub fn redact(url: &str) -> String {
    let parts = Parts::of(url);
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..parts.userinfo_start]);
    if let Some(at) = parts.userinfo_end {
        let userinfo = &url[parts.userinfo_start..at];
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
            }
            None => out.push_str(userinfo),
        }
        out.push_str(&url[at..parts.query_start.unwrap_or(parts.fragment_start)]);
    } else {
        out.push_str(&url[parts.userinfo_start..parts.query_start.unwrap_or(parts.fragment_start)]);
    }
    if let Some(query_start) = parts.query_start {
        out.push('?');
        let query = &url[query_start + 1..parts.fragment_start];
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret_key(key) => format!("{key}={MASK}"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out.push_str(&url[parts.fragment_start..]);
    out
}

/// `text` (an error message, say) with every password of `url` masked, as written in the URL
/// and percent-decoded, wherever it appears.
pub fn scrub(text: &str, url: &str) -> String {
    let mut secrets = secrets(url);
    // Longest first, so that a secret containing another is masked whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    let mut out = text.to_string();
    for secret in secrets {
        if secret.len() >= SHORTEST_SCRUBBED_SECRET {
            out = out.replace(&secret, MASK);
        }
    }
    out
}

/// Every password the URL carries, raw and decoded.
fn secrets(url: &str) -> Vec<String> {
    let parts = Parts::of(url);
    let mut raw = Vec::new();
    if let Some(at) = parts.userinfo_end {
        if let Some((_, password)) = url[parts.userinfo_start..at].split_once(':') {
            raw.push(password.to_string());
        }
    }
    if let Some(query_start) = parts.query_start {
        for pair in url[query_start + 1..parts.fragment_start].split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                if is_secret_key(key) {
                    raw.push(value.to_string());
                }
            }
        }
    }
    let mut all = Vec::new();
    for secret in raw {
        let decoded: String = form_urlencoded::parse(format!("s={secret}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        if decoded != secret {
            all.push(decoded);
        }
        all.push(secret);
    }
    all
}

fn is_secret_key(key: &str) -> bool {
    key.to_ascii_lowercase().contains("password")
}

/// Byte offsets of a URL's pieces, found without parsing it strictly: a malformed URL (the
/// very case an error message is about) must be masked too.
struct Parts {
    /// Just after `scheme://` (0 when there is none).
    userinfo_start: usize,
    /// The `@` that ends the user information, if any.
    userinfo_end: Option<usize>,
    /// The `?` that starts the query, if any.
    query_start: Option<usize>,
    /// The `#` that starts the fragment, or the end of the URL.
    fragment_start: usize,
}

impl Parts {
    fn of(url: &str) -> Parts {
        let userinfo_start = url.find("://").map_or(0, |i| i + 3);
        let fragment_start = url[userinfo_start..]
            .find('#')
            .map_or(url.len(), |i| userinfo_start + i);
        let query_start = url[userinfo_start..fragment_start]
            .find('?')
            .map(|i| userinfo_start + i);
        // The last `@` before the query: a password may hold an unescaped `/` or `@`, and
        // masking too much of a malformed URL is better than showing part of a password.
        let userinfo_end = url[userinfo_start..query_start.unwrap_or(fragment_start)]
            .rfind('@')
            .map(|i| userinfo_start + i);
        Parts {
            userinfo_start,
            userinfo_end,
            query_start,
            fragment_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_information_and_query_are_masked() {
        for (url, expected) in [
            (
                "postgres://u:s3cret@127.0.0.1:1/db?password=s3cret2",
                "postgres://u:***@127.0.0.1:1/db?password=***",
            ),
            (
                "postgres://u@db.example/warbler?sslmode=require&password=p%40ss&application_name=w",
                "postgres://u@db.example/warbler?sslmode=require&password=***&application_name=w",
            ),
            (
                "postgresql://owner:p%2Fa@ss@db.example:5432/w#frag",
                "postgresql://owner:***@db.example:5432/w#frag",
            ),
            (
                "postgres://u:pa/ss@host/db",
                "postgres://u:***@host/db",
            ),
            (
                "postgres://u:x@host/db?PASSWORD=y&sslpassword=z",
                "postgres://u:***@host/db?PASSWORD=***&sslpassword=***",
            ),
        ] {
            assert_eq!(redact(url), expected, "{url}");
        }
    }

    #[test]
    fn urls_without_a_password_are_unchanged() {
        for url in [
            "sqlite://warbler-data/warbler.db",
            "sqlite::memory:",
            "sqlite://data/w.db?mode=rwc",
            "postgres://postgres@127.0.0.1:55432/postgres",
            "postgres://host/db?sslmode=disable&options=a@b",
            "not a url at all",
            "",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn scrubbing_masks_every_password_wherever_it_appears() {
        let url = "postgres://u:s3cret@127.0.0.1:1/db?password=top%20secret&sslmode=x";
        let message =
            format!("unrecognized database url: {url:?}; auth failed for s3cret; (top secret)");
        let scrubbed = scrub(&message, url);
        assert!(!scrubbed.contains("s3cret"), "{scrubbed}");
        assert!(!scrubbed.contains("top secret"), "{scrubbed}");
        assert!(!scrubbed.contains("top%20secret"), "{scrubbed}");
        assert!(scrubbed.contains("127.0.0.1:1/db"), "{scrubbed}");
        assert_eq!(scrub("nothing to hide", url), "nothing to hide");
        // A one-letter password would garble every message; it is not scrubbed.
        assert_eq!(
            scrub("connection refused", "postgres://u:e@h/db"),
            "connection refused"
        );
    }
}
