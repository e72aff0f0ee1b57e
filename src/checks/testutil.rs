//! Test helpers: a demo CA, certificates with chosen names and lifetimes,
//! and real local HTTP(S) servers that answer with canned responses. The
//! unit tests and (through the `testkit` feature) the integration tests
//! share them.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

pub struct TestCa {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    pub pem: String,
}

pub fn ca() -> TestCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "spinup-smoke test CA");
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    TestCa { cert, key, pem }
}

/// A leaf for `names`, valid for `days` from now, signed by `ca`.
pub fn leaf(ca: &TestCa, names: &[&str], days: i64) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let now = chrono::Utc::now();
    let start = now - chrono::Duration::days(1);
    let end = now + chrono::Duration::days(days);
    use chrono::Datelike;
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// Serves `response` (raw HTTP/1.1 bytes) to every connection, after `delay`;
/// over TLS when `tls` is given. Returns the bound address.
pub async fn serve(
    response: String,
    delay: Duration,
    tls: Option<(Vec<u8>, Vec<u8>)>,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(|(cert, key)| tls_acceptor(cert, key));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            answer(s, &response, delay).await
                        }
                    }
                    None => answer(stream, &response, delay).await,
                }
            });
        }
    });
    addr
}

/// A TLS acceptor presenting `cert` (DER) with its PKCS#8 `key`, as
/// [`leaf`] returns them.
pub fn tls_acceptor(cert: Vec<u8>, key: Vec<u8>) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    response: &str,
    delay: Duration,
) {
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf).await;
    tokio::time::sleep(delay).await;
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A complete HTTP/1.1 response.
pub fn http_response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}
