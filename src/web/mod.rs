//! The web layer shared by the http, matrix and oidc checks: HTTP client
//! trust (`trust_ca_file`), a headless browser session with per-origin
//! cookies (`browser`) and HTML form handling (`form`).
//!
//! **Architecture invariant:** imports nothing above `error`; it knows no check.

pub mod browser;
pub mod form;

/// Adds the CA certificates of a profile's `ca_file` (PEM) to an HTTP
/// client's trusted roots.
pub fn trust_ca_file(
    mut builder: reqwest::ClientBuilder,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::ClientBuilder, String> {
    let Some(ca_file) = ca_file else {
        return Ok(builder);
    };
    let pem = std::fs::read(ca_file).map_err(|e| {
        format!(
            "cannot read ca_file {}: {e}; point it at the PEM file of the CA that signed the server's certificate",
            ca_file.display()
        )
    })?;
    for certificate in reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("ca_file {} is not PEM: {e}", ca_file.display()))?
    {
        builder = builder.add_root_certificate(certificate);
    }
    Ok(builder)
}
