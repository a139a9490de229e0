//! TLS to an SMSC (`tls = true` on a route): rustls with the ring provider (the one the
//! webhook client installs) and the platform's certificate verifier.

use rustls_platform_verifier::ConfigVerifierExt;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub async fn connect(host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, String> {
    crate::webhook::install_crypto_provider();
    let config = rustls::ClientConfig::with_platform_verifier().map_err(|err| err.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|err| format!("server name {host:?}: {err}"))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|err| err.to_string())
}
