//! The HTTP client behind the tile reader and witness submission: reqwest on rustls with the ring provider (the
//! one tonic's TLS already uses), keep-alive connections, gzip bodies decoded.

use std::time::Duration;

use crate::error::ClientError;

/// How long an HTTP request may take before it fails, by default.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client with the given per-request timeout. Installs rustls' ring provider as the process default if none
/// is installed yet (reqwest is built without a provider of its own).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("tlog/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
