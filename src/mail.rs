//! E-mail through the operator's SMTP relay (`smtp_url`): `smtp://host:25` (plain),
//! `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`
//! (TLS from the start). Driven by `service`; knows nothing of alarms.

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// A configured SMTP relay and the sender address mail goes out from.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl std::fmt::Debug for Mailer {
    // The URL may hold the relay's password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// Checks the URL and the sender; connects only when mail is sent.
    pub fn new(smtp_url: &str, from: &str) -> Result<Mailer, String> {
        crate::webhook::install_crypto_provider();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|err| format!("smtp_url: {err}"))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        let from = from
            .parse()
            .map_err(|err| format!("smtp_from {from:?}: {err}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends a plain-text mail to every address of `to`.
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            builder = builder.to(address
                .parse()
                .map_err(|err| format!("address {address:?}: {err}"))?);
        }
        let message = builder
            .body(body.to_string())
            .map_err(|err| err.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| err.to_string())
    }
}
