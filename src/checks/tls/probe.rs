//! A real TLS handshake that records the presented chain and whether it
//! verifies (against `ca_file` or the system roots) instead of aborting, so
//! the judge can report expiry, names, key and protocol. The time of the
//! handshake is recorded too: the judge never reads the clock.

use std::sync::{Arc, Mutex};

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::judge::CertFacts;
use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;

/// Records the chain and the real verifier's verdict; lets the handshake go on.
/// Without any trusted root (`inner` is `Err`) the chain is recorded as
/// unverifiable and the other properties are still judged.
#[derive(Debug)]
struct Recorder {
    inner: Result<Arc<dyn ServerCertVerifier>, String>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Mutex<Vec<Vec<u8>>>,
    verdict: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            *chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.to_vec())
                .collect();
        }
        let result = match &self.inner {
            Ok(inner) => inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
        };
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(result);
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn roots(spec: &Spec) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    match &spec.ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                store
                    .add(cert)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            }
            if store.is_empty() {
                return Err(format!("ca_file {} holds no certificate", path.display()));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
        }
    }
    Ok(store)
}

/// The facts of one handshake; a failed handshake is a fact (`error`).
pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    match tokio::time::timeout(ctx.remaining(), gather(spec)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => Facts {
            error: Some(e),
            ..Facts::default()
        },
        Err(_) => Facts {
            error: Some("no handshake before the deadline".into()),
            ..Facts::default()
        },
    }
}

async fn gather(spec: &Spec) -> Result<Facts, String> {
    gather_with_roots(spec, roots(spec)?).await
}

async fn gather_with_roots(spec: &Spec, roots: rustls::RootCertStore) -> Result<Facts, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner: Result<Arc<dyn ServerCertVerifier>, String> = if roots.is_empty() {
        Err("no trusted root certificates (the system store is empty); set ca_file".into())
    } else {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map(|v| v as Arc<dyn ServerCertVerifier>)
        .map_err(|e| format!("cannot build the verifier: {e}"))
    };
    let recorder = Arc::new(Recorder {
        inner,
        provider: provider.clone(),
        chain: Mutex::new(Vec::new()),
        verdict: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(spec.name())
        .map_err(|e| format!("invalid server name `{}`: {e}", spec.name()))?;
    let tcp = tokio::net::TcpStream::connect(spec.address.as_str())
        .await
        .map_err(|e| format!("connect to {} failed: {e}", spec.address))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let (_, conn) = tls.get_ref();
    let protocol = conn
        .protocol_version()
        .map(|v| format!("{v:?}").replace("TLSv1_", "TLSv1."))
        .unwrap_or_default();
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    let chain = recorder.chain.lock().map(|c| c.clone()).unwrap_or_default();
    let chain_error = recorder
        .verdict
        .lock()
        .ok()
        .and_then(|v| v.clone())
        .and_then(|r| r.err());
    Ok(Facts {
        protocol,
        cipher,
        chain: chain
            .iter()
            .filter_map(|der| parse_cert(der))
            .collect::<Vec<CertFacts>>(),
        chain_error,
        now_unix: chrono::Utc::now().timestamp(),
        error: None,
    })
}

/// What the judge needs of one DER certificate; `None` when it does not parse.
pub fn parse_cert(der: &[u8]) -> Option<CertFacts> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut facts = CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after_unix: cert.validity().not_after.timestamp(),
        ..CertFacts::default()
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => facts.dns_names.push(d.to_string()),
                GeneralName::IPAddress(ip) => {
                    let text = match ip.len() {
                        4 => std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string(),
                        16 => {
                            let mut b = [0u8; 16];
                            b.copy_from_slice(ip);
                            std::net::Ipv6Addr::from(b).to_string()
                        }
                        _ => continue,
                    };
                    facts.ip_addresses.push(text);
                }
                _ => {}
            }
        }
    }
    let (key_type, bits) = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => ("RSA", rsa.key_size() as u32),
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => ("EC", ec.key_size() as u32),
        Ok(_) => {
            let oid = cert.public_key().algorithm.algorithm.to_id_string();
            match oid.as_str() {
                "1.3.101.112" => ("Ed25519", 256),
                "1.3.101.113" => ("Ed448", 456),
                _ => ("unknown", 0),
            }
        }
        Err(_) => ("unknown", 0),
    };
    facts.key_type = key_type.into();
    facts.key_bits = bits;
    Some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil;
    use crate::checks::tls::judge;
    use crate::checks::tls::run;
    use std::time::Duration;

    async fn server(days: i64, names: &[&str]) -> (String, testutil::TestCa) {
        let ca = testutil::ca();
        let addr = testutil::serve(
            testutil::http_response("200 OK", "text/plain", "x"),
            Duration::ZERO,
            Some(testutil::leaf(&ca, names, days)),
        )
        .await;
        (addr.to_string(), ca)
    }

    fn spec(address: &str, ca: Option<&std::path::Path>, extra: &str) -> Spec {
        let ca = ca
            .map(|p| format!("ca_file = \"{}\"\n", p.display()))
            .unwrap_or_default();
        toml::from_str(&format!(
            "address = \"{address}\"\nserver_name = \"rave.local\"\n{ca}{extra}"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn good_chain_passes_and_each_property_can_fail() {
        let (address, ca) = server(90, &["rave.local", "127.0.0.1"]).await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).unwrap();
        let ctx = ProbeContext::for_tests(5);
        let v = run(
            &spec(&address, Some(&ca_file), "san = [\"rave.local\"]"),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.contains("TLSv1.3"), "{v:?}");
        let v = run(
            &spec(&address, Some(&ca_file), "san = [\"gitlab.rave.local\"]"),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("gitlab.rave.local"), "{v:?}");
        let v = run(&spec(&address, None, ""), &ctx).await;
        assert!(
            !v.pass && v.found.to_lowercase().contains("unknown"),
            "unknown CA: {v:?}"
        );
        let v = run(
            &spec(&address, Some(&ca_file), "protocols = [\"TLSv1.2\"]"),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("TLSv1.3"), "{v:?}");
    }

    #[tokio::test]
    async fn a_certificate_expiring_in_five_days_fails_the_14_day_rule() {
        let (address, ca) = server(5, &["rave.local"]).await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).unwrap();
        let v = run(
            &spec(&address, Some(&ca_file), ""),
            &ProbeContext::for_tests(5),
        )
        .await;
        assert!(!v.pass, "{v:?}");
        assert!(
            v.found.contains("expires in 4 days") || v.found.contains("expires in 5 days"),
            "{v:?}"
        );
        assert!(
            run(
                &spec(&address, Some(&ca_file), "min_days_valid = 3"),
                &ProbeContext::for_tests(5)
            )
            .await
            .pass
        );
    }

    #[tokio::test]
    async fn without_any_trusted_root_the_other_properties_are_still_judged() {
        // A host without a system CA store: the chain cannot verify, but
        // expiry, names and protocol are still gathered and judged.
        let (address, _ca) = server(90, &["rave.local"]).await;
        let relaxed = spec(
            &address,
            None,
            "chain_valid = false\nsan = [\"rave.local\"]",
        );
        let facts = gather_with_roots(&relaxed, rustls::RootCertStore::empty())
            .await
            .unwrap();
        let v = judge::judge(&relaxed, &facts);
        assert!(v.pass, "{v:?}");
        let strict = spec(&address, None, "");
        let facts = gather_with_roots(&strict, rustls::RootCertStore::empty())
            .await
            .unwrap();
        let v = judge::judge(&strict, &facts);
        assert!(
            !v.pass && v.found.contains("no trusted root certificates"),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn no_tls_server_is_a_clear_failure() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let v = run(&spec(&addr, None, ""), &ProbeContext::for_tests(5)).await;
        assert!(!v.pass && v.found.contains("refused"), "{v:?}");
    }
}
