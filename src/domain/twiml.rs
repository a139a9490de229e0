//! Messaging TwiML, the answer of an inbound-message webhook: `<Response>` holding
//! `<Message>` (text, or `<Body>` and `<Media>` children) and `<Redirect>` verbs.

/// One verb of a `<Response>`, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Message(ReplyMessage),
    Redirect { url: String, method: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyMessage {
    pub to: Option<String>,
    pub from: Option<String>,
    /// Status callback URL (`action`, or the deprecated `statusCallback`).
    pub action: Option<String>,
    pub method: Option<String>,
    pub body: String,
    pub media: Vec<String>,
}

/// Why a TwiML document was refused (Twilio's error 12100, "Document parse failure").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwimlError(pub String);

impl std::fmt::Display for TwimlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a webhook's answer. An empty body means "no reply".
pub fn parse(document: &str) -> Result<Vec<Verb>, TwimlError> {
    if document.trim().is_empty() {
        return Ok(Vec::new());
    }
    let options = roxmltree::ParsingOptions {
        // TwiML never needs a DTD; refusing it keeps entity expansion out.
        allow_dtd: false,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(document, options)
        .map_err(|err| TwimlError(format!("invalid XML: {err}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Response" {
        return Err(TwimlError(format!(
            "the root element is <{}>, not <Response>",
            root.tag_name().name()
        )));
    }
    let mut verbs = Vec::new();
    for node in root.children().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "Message" | "Sms" => verbs.push(Verb::Message(message(node)?)),
            "Redirect" => {
                let url = node.text().unwrap_or("").trim().to_string();
                if url.is_empty() {
                    return Err(TwimlError("<Redirect> needs a URL".into()));
                }
                let method = node.attribute("method").unwrap_or("POST").to_uppercase();
                if method != "GET" && method != "POST" {
                    return Err(TwimlError(format!("<Redirect> method {method} is invalid")));
                }
                verbs.push(Verb::Redirect { url, method });
            }
            other => return Err(TwimlError(format!("<{other}> is not a messaging verb"))),
        }
    }
    Ok(verbs)
}

fn message(node: roxmltree::Node) -> Result<ReplyMessage, TwimlError> {
    let mut reply = ReplyMessage {
        to: node.attribute("to").map(str::to_string),
        from: node.attribute("from").map(str::to_string),
        action: node
            .attribute("action")
            .or_else(|| node.attribute("statusCallback"))
            .map(str::to_string),
        method: node.attribute("method").map(str::to_uppercase),
        ..Default::default()
    };
    let has_nouns = node.children().any(|c| c.is_element());
    if has_nouns {
        for child in node.children().filter(|c| c.is_element()) {
            let text = child.text().unwrap_or("").trim().to_string();
            match child.tag_name().name() {
                "Body" => reply.body.push_str(&text),
                "Media" => {
                    if !text.is_empty() {
                        // As an API send's `MediaUrl` (21620): the reply's Media resource
                        // redirects clients to it.
                        if !crate::domain::message::is_media_url(&text) {
                            return Err(TwimlError(format!(
                                "<Media> {text:?} is not an absolute http or https URL"
                            )));
                        }
                        reply.media.push(text);
                    }
                }
                other => {
                    return Err(TwimlError(format!(
                        "<{other}> is not allowed inside <Message>"
                    )))
                }
            }
        }
    } else {
        reply.body = node.text().unwrap_or("").trim().to_string();
    }
    if reply.body.is_empty() && reply.media.is_empty() {
        return Err(TwimlError("<Message> has neither a body nor media".into()));
    }
    if reply.media.len() > 10 {
        return Err(TwimlError("<Message> has more than 10 <Media>".into()));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_answers_mean_no_reply() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("<Response />").unwrap(), vec![]);
        assert_eq!(
            parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>").unwrap(),
            vec![]
        );
    }

    #[test]
    fn message_text_and_nouns() {
        let verbs = parse(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Hello &amp; bye</Message>\
             <Message to=\"+15005550006\" from=\"+15017122661\" action=\"https://cb.example/s\" method=\"POST\">\
             <Body>Hi</Body><Media>https://m.example/a.png</Media></Message>\
             <Redirect method=\"GET\">https://next.example/twiml</Redirect></Response>",
        )
        .unwrap();
        assert_eq!(verbs.len(), 3);
        assert_eq!(
            verbs[0],
            Verb::Message(ReplyMessage {
                body: "Hello & bye".into(),
                ..Default::default()
            })
        );
        let Verb::Message(second) = &verbs[1] else {
            panic!("expected a message")
        };
        assert_eq!(second.to.as_deref(), Some("+15005550006"));
        assert_eq!(second.action.as_deref(), Some("https://cb.example/s"));
        assert_eq!(second.body, "Hi");
        assert_eq!(second.media, vec!["https://m.example/a.png"]);
        assert_eq!(
            verbs[2],
            Verb::Redirect {
                url: "https://next.example/twiml".into(),
                method: "GET".into()
            }
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [
            "<Response><Message>unclosed</Response>",
            "<Reply><Message>x</Message></Reply>",
            "<Response><Say>voice</Say></Response>",
            "<Response><Message></Message></Response>",
            "not xml at all",
            "<!DOCTYPE r [<!ENTITY a \"aaaa\">]><Response><Message>&a;</Message></Response>",
            // Media the API would refuse (21620).
            "<Response><Message><Media>file:///etc/passwd</Media></Message></Response>",
            "<Response><Message><Media>gopher://internal:70/x</Media></Message></Response>",
            "<Response><Message><Body>x</Body><Media>/relative.png</Media></Message></Response>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
