//! The web layer shared by the http, matrix and oidc checks: HTTP clients
//! (`client_builder`, `trust_ca_file`, `through_socks_proxy`, `USER_AGENT`),
//! a headless browser session with per-origin cookies (`browser`) and HTML
//! form handling (`form`).
//!
//! **Architecture invariant:** imports nothing above `error`; it knows no check.

pub mod browser;
pub mod form;

/// The `User-Agent` of the validator's HTTP requests.
pub const USER_AGENT: &str = concat!("spinup-smoke/", env!("CARGO_PKG_VERSION"));

/// A client builder that follows no redirect (the caller sees each one, or
/// sets its own policy) and trusts the CA certificates of `ca_file`.
pub fn client_builder(ca_file: Option<&std::path::Path>) -> Result<reqwest::ClientBuilder, String> {
    trust_ca_file(
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()),
        ca_file,
    )
}

/// Adds the CA certificates of a profile's `ca_file` (PEM) to an HTTP
/// client's trusted roots.
pub fn trust_ca_file(
    mut builder: reqwest::ClientBuilder,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::ClientBuilder, String> {
    let Some(ca_file) = ca_file else {
        return Ok(builder);
    };
    let pem = read_ca_file(ca_file)?;
    for certificate in reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("ca_file {} is not PEM: {e}", ca_file.display()))?
    {
        builder = builder.add_root_certificate(certificate);
    }
    Ok(builder)
}

/// The PEM text of a profile's `ca_file`, or what to do about it.
pub fn read_ca_file(ca_file: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(ca_file).map_err(|e| {
        format!(
            "cannot read ca_file {}: {e}; point it at the PEM file of the CA that signed the server's certificate",
            ca_file.display()
        )
    })
}

/// Sends every request of the client through the SOCKS5 proxy at `proxy`,
/// host names resolved by the proxy (`socks5h`): connections, redirects
/// and followed links are all made from the proxy's side.
pub fn through_socks_proxy(
    builder: reqwest::ClientBuilder,
    proxy: std::net::SocketAddr,
) -> Result<reqwest::ClientBuilder, String> {
    let proxy = reqwest::Proxy::all(format!("socks5h://{proxy}"))
        .map_err(|e| format!("cannot use the SOCKS proxy {proxy}: {e}"))?;
    Ok(builder.proxy(proxy))
}
