//! A real TLS handshake that records the presented chain and whether it
//! verifies (against `ca_file` or the system roots) instead of aborting, so
//! the judge can report expiry, names, key and protocol. The time of the
//! handshake is recorded too: the judge never reads the clock.
//!
//! For `min_version`, each older protocol version is offered alone by
//! `openssl s_client` on this machine (rustls cannot speak TLS 1.0 or 1.1),
//! at security level 0 so the client itself refuses nothing; the server
//! must refuse each.

use std::sync::{Arc, Mutex};

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::judge::CertFacts;
use super::judge::{Facts, Offer};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};

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

/// The facts of one handshake on the check's route; a failed handshake
/// is a fact (`error`). Through a tunnel the handshake runs over the local
/// forward and keeps the name of `address` for SNI and verification.
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let work = async {
        let forwarded;
        let spec = match route {
            Route::Direct => spec,
            Route::Tunnel(_) => {
                let (host, port) = via::split_host_port(&spec.address)?;
                forwarded = Spec {
                    address: via::tcp_endpoint(route, &host, port, ctx.deadline).await?,
                    server_name: Some(spec.name()),
                    ..spec.clone()
                };
                &forwarded
            }
        };
        gather(spec).await
    };
    match tokio::time::timeout(ctx.remaining(), work).await {
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
        .map_err(|e| handshake_failed(&e, &recorder))?;
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
        older: Vec::new(),
    })
}

/// Why a handshake failed, with the key of the certificate the server
/// presented when it got that far: rustls refuses signatures of RSA keys
/// under 2048 bits, so a weak key shows as a bad signature.
fn handshake_failed(e: &std::io::Error, recorder: &Recorder) -> String {
    let leaf = recorder
        .chain
        .lock()
        .ok()
        .and_then(|c| c.first().and_then(|der| parse_cert(der)));
    match leaf {
        Some(l) => format!(
            "TLS handshake failed: {e} (the server presented {} with an {} {}-bit key)",
            l.subject, l.key_type, l.key_bits
        ),
        None => format!("TLS handshake failed: {e}"),
    }
}

/// Offers each version older than `min_version` alone to `address` with
/// `openssl s_client` (run by this machine's executor: the connection is
/// made from here, as the handshake above), each bounded by the deadline.
pub async fn older_versions(spec: &Spec, address: &str, ctx: &ProbeContext) -> Vec<(String, Offer)> {
    let Some(min) = spec.min_version else {
        return Vec::new();
    };
    let local = crate::os::LocalExecutor;
    let name = spec.name();
    let mut out = Vec::new();
    for (option, version) in min.older() {
        let command = crate::os::CommandSpec::new(
            "openssl",
            &[
                "s_client",
                "-connect",
                address,
                "-servername",
                &name,
                option,
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ],
        );
        let offer = match crate::os::CommandExecutor::run(&local, &command, ctx.deadline).await {
            Ok(o) => read_s_client(&o.stdout_text(), &o.stderr_text()),
            Err(e) => Offer::Untried {
                reason: format!("`openssl s_client`: {e}"),
            },
        };
        out.push((version.to_string(), offer));
    }
    out
}

/// How `openssl s_client` ended: a cipher other than `(NONE)` is a
/// completed handshake; a protocol alert or version error a refusal.
fn read_s_client(stdout: &str, stderr: &str) -> Offer {
    let cipher = stdout
        .lines()
        .find_map(|l| l.split_once("Cipher is ").map(|(_, c)| c.trim().to_string()));
    if let Some(c) = cipher.as_deref().filter(|c| *c != "(NONE)") {
        return Offer::Accepted {
            cipher: c.to_string(),
        };
    }
    let error = stderr
        .lines()
        .find(|l| l.contains(":error:"))
        .map(|l| l.rsplit(':').nth(3).unwrap_or(l).trim().to_string());
    let refusals = [
        "alert protocol version",
        "unsupported protocol",
        "wrong version number",
        "alert handshake failure",
        "no shared cipher",
        "unexpected eof",
    ];
    match error {
        // The server cut the handshake short: it does not speak the version.
        Some(e) if cipher.is_some() && refusals.iter().any(|r| stderr.contains(r)) => {
            Offer::Refused { reason: e }
        }
        Some(e) => Offer::Untried { reason: e },
        None => Offer::Untried {
            reason: crate::check::excerpt(stderr.trim(), 200).to_string(),
        },
    }
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

    /// `openssl` in `dir`, which must succeed.
    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (the tests of min_version need the openssl program)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// A CA and a leaf for rave.local with an RSA key of `bits`, by openssl.
    fn openssl_chain(dir: &std::path::Path, bits: u32) {
        let rsa = format!("rsa:{bits}");
        openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(dir, &["req", "-newkey", &rsa, "-nodes", "-subj", "/CN=rave.local", "-keyout", "leaf.key", "-out", "leaf.csr"]);
        std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:rave.local\n").unwrap();
        openssl(dir, &["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "60", "-extfile", "san.ext", "-out", "leaf.pem"]);
    }

    /// `openssl s_server` on a free port with `extra` options; killed on drop.
    struct OpensslServer {
        child: std::process::Child,
        address: String,
    }

    impl OpensslServer {
        fn start(dir: &std::path::Path, extra: &[&str]) -> OpensslServer {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = std::process::Command::new("openssl")
                .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
                .args(["-cert", "leaf.pem", "-key", "leaf.key"])
                .args(extra)
                .current_dir(dir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("openssl s_server starts");
            let address = format!("127.0.0.1:{port}");
            for _ in 0..100 {
                if std::net::TcpStream::connect(&address).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            OpensslServer { child, address }
        }
    }

    impl Drop for OpensslServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn a_server_that_accepts_tls_1_1_fails_min_version() {
        let dir = tempfile::tempdir().unwrap();
        openssl_chain(dir.path(), 2048);
        let ca_file = dir.path().join("ca.pem");
        let ctx = ProbeContext::for_tests(20);
        // Security level 0: the server speaks TLS 1.0 and 1.1 as well.
        let old = OpensslServer::start(dir.path(), &["-cipher", "DEFAULT@SECLEVEL=0"]);
        let v = run(&spec(&old.address, Some(&ca_file), "min_version = \"1.2\""), &ctx).await;
        assert!(!v.pass && v.found.contains("TLSv1.1 accepted (cipher "), "{v:?}");
        assert!(v.found.contains("TLSv1 accepted"), "{v:?}");
        // The same certificate on a server that refuses them passes.
        let modern = OpensslServer::start(dir.path(), &["-no_tls1", "-no_tls1_1"]);
        let v = run(&spec(&modern.address, Some(&ca_file), "min_version = \"1.2\""), &ctx).await;
        assert!(v.pass && v.found.contains("refused: TLSv1, TLSv1.1"), "{v:?}");
        // 1.3 as the minimum: this server still speaks 1.2.
        let v = run(&spec(&modern.address, Some(&ca_file), "min_version = \"1.3\""), &ctx).await;
        assert!(!v.pass && v.found.contains("TLSv1.2 accepted"), "{v:?}");
    }

    #[tokio::test]
    async fn a_server_with_a_1024_bit_rsa_key_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        openssl_chain(dir.path(), 1024);
        // Security level 0: openssl would not serve so small a key otherwise.
        let weak = OpensslServer::start(dir.path(), &["-cipher", "DEFAULT@SECLEVEL=0"]);
        let ca_file = dir.path().join("ca.pem");
        let v = run(
            &spec(&weak.address, Some(&ca_file), ""),
            &ProbeContext::for_tests(10),
        )
        .await;
        assert!(!v.pass && v.found.contains("with an RSA 1024-bit key"), "{v:?}");
    }

    #[test]
    fn a_1024_bit_rsa_certificate_is_read_as_such_and_fails() {
        let dir = tempfile::tempdir().unwrap();
        openssl_chain(dir.path(), 1024);
        let pem = std::fs::read(dir.path().join("leaf.pem")).unwrap();
        let der = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .unwrap()
            .unwrap();
        let leaf = parse_cert(&der).unwrap();
        assert_eq!((leaf.key_type.as_str(), leaf.key_bits), ("RSA", 1024));
        let facts = Facts {
            protocol: "TLSv1.2".into(),
            chain: vec![CertFacts {
                not_after_unix: leaf.not_after_unix,
                ..leaf
            }],
            now_unix: chrono::Utc::now().timestamp(),
            ..Facts::default()
        };
        let v = judge::judge(&spec("h:443", None, "min_key_bits = 2048"), &facts);
        assert!(!v.pass && v.found.contains("RSA 1024 bits"), "{v:?}");
    }

    #[test]
    fn s_client_outcomes() {
        let accepted = read_s_client("New, TLSv1.0, Cipher is ECDHE-RSA-AES256-SHA\n", "");
        assert_eq!(
            accepted,
            Offer::Accepted {
                cipher: "ECDHE-RSA-AES256-SHA".into()
            }
        );
        let refused = read_s_client(
            "New, (NONE), Cipher is (NONE)\n",
            "40973BF9CF7F0000:error:0A00042E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version:../ssl/record/rec_layer_s3.c:1601:SSL alert number 70\n",
        );
        assert_eq!(
            refused,
            Offer::Refused {
                reason: "tlsv1 alert protocol version".into()
            }
        );
        let no_server = read_s_client(
            "",
            "40F7:error:8000006F:system library:BIO_connect:Connection refused:../crypto/bio/bio_sock2.c:114:calling connect()\n",
        );
        assert!(matches!(no_server, Offer::Untried { .. }), "{no_server:?}");
    }

    #[tokio::test]
    async fn no_tls_server_is_a_clear_failure() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let v = run(&spec(&addr, None, ""), &ProbeContext::for_tests(5)).await;
        assert!(!v.pass && v.found.contains("refused"), "{v:?}");
    }

    /// The name of `address` resolves only on the host: the handshake
    /// passes through the tunnel (SNI and verification keep the name), not
    /// directly, and fails with the reason when the tunnel refuses.
    #[tokio::test]
    async fn via_host_shakes_hands_through_the_tunnel_with_the_addresss_name() {
        let (address, ca) = server(90, &["tls.host-only.invalid"]).await;
        let port = address.rsplit_once(':').unwrap().1;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).unwrap();
        let tunnel = std::sync::Arc::new(
            testutil::RelayTunnel::new().map_name("tls.host-only.invalid", "127.0.0.1"),
        );
        let mut ctx = ProbeContext::for_tests(5);
        ctx.tunnel = Some(tunnel.clone());
        let table = |via: &str| -> Spec {
            toml::from_str(&format!(
                "address = \"tls.host-only.invalid:{port}\"\nca_file = \"{}\"\nsan = [\"tls.host-only.invalid\"]\nvia = \"{via}\"",
                ca_file.display()
            ))
            .unwrap()
        };
        let v = run(&table("host"), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.starts_with("via ssh relay@test-host:22 (forwarded)"), "{v:?}");
        assert_eq!(tunnel.connections(), 1);
        let v = run(&table("direct"), &ctx).await;
        assert!(!v.pass && v.found.contains("tls.host-only.invalid"), "{v:?}");
        tunnel.refuse();
        let v = run(&table("host"), &ctx).await;
        assert!(
            !v.pass && v.found.contains("cannot forward to tls.host-only.invalid"),
            "{v:?}"
        );
    }
}
