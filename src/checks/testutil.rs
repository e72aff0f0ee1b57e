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

/// Answers every connection with `reply(head)`, where `head` is the
/// request's line and headers (read up to the blank line): a server whose
/// answers depend on the request, or that records what it was sent.
/// Returns the bound address.
pub async fn serve_fn(
    reply: impl Fn(&str) -> String + Send + Sync + 'static,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = reply(&String::from_utf8_lossy(&head));
                let _ = s.write_all(response.as_bytes()).await;
                let _ = s.shutdown().await;
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

/// A test `Tunnel` that really relays, as a host's ssh connection would:
/// `forward_tcp` is a local TCP relay to the given host and port,
/// `socks_proxy` a minimal SOCKS5 server (CONNECT only, names resolved by
/// the relay), `forward_unix` a unix-socket relay. Host names in `names`
/// are mapped before connecting (a name that resolves only "on the host");
/// `refuse` makes every step fail, as a dead connection would. Every
/// relayed connection is counted. The relays stop when the tunnel drops.
pub struct RelayTunnel {
    names: std::collections::HashMap<String, String>,
    sockets: std::collections::HashMap<String, std::path::PathBuf>,
    refuse: std::sync::atomic::AtomicBool,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    dir: std::path::PathBuf,
}

impl Default for RelayTunnel {
    fn default() -> Self {
        RelayTunnel::new()
    }
}

impl RelayTunnel {
    pub fn new() -> RelayTunnel {
        RelayTunnel {
            names: Default::default(),
            sockets: Default::default(),
            refuse: false.into(),
            connections: Default::default(),
            tasks: Default::default(),
            dir: {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let dir = std::env::temp_dir()
                    .join(format!("spinup-smoke-relay-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                dir
            },
        }
    }
    /// Connections to `name` go to `to` (an address or a name).
    pub fn map_name(mut self, name: &str, to: &str) -> RelayTunnel {
        self.names.insert(name.to_string(), to.to_string());
        self
    }
    /// Forwards of the remote socket `remote` reach the local socket `local`.
    pub fn map_socket(mut self, remote: &str, local: &std::path::Path) -> RelayTunnel {
        self.sockets.insert(remote.to_string(), local.to_path_buf());
        self
    }
    /// From now on every step fails ("the connection to the host dropped").
    pub fn refuse(&self) {
        self.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    /// Connections relayed so far (TCP, SOCKS and unix).
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn check_open(&self) -> Result<(), String> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            Err("the test relay refuses: the connection to the host is down".into())
        } else {
            Ok(())
        }
    }
    fn target(&self, host: &str) -> String {
        self.names
            .get(host)
            .cloned()
            .unwrap_or_else(|| host.to_string())
    }
    fn keep(&self, task: tokio::task::JoinHandle<()>) {
        self.tasks.lock().unwrap().push(task.abort_handle());
    }
}

impl Drop for RelayTunnel {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn relay<A, B>(mut a: A, mut b: B)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}

/// The SOCKS5 side of one client: greeting, CONNECT, reply, relay.
async fn socks5_session(
    mut client: tokio::net::TcpStream,
    names: std::collections::HashMap<String, String>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&0) {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, 0]).await?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            std::net::Ipv6Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            return Ok(());
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    if request[1] != 1 {
        client.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    }
    let host = names.get(&host).cloned().unwrap_or(host);
    match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(upstream) => {
            client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            relay(client, upstream).await;
        }
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                5
            } else {
                4
            };
            client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        }
    }
    Ok(())
}

impl crate::os::Tunnel for RelayTunnel {
    fn forward_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        _deadline: std::time::Instant,
    ) -> crate::os::TunnelFuture<'a, std::net::SocketAddr> {
        Box::pin(async move {
            self.check_open()?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            let target = self.target(host);
            let count = self.connections.clone();
            self.keep(tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let target = target.clone();
                    tokio::spawn(async move {
                        // Like ssh: a refused far end closes the accepted connection.
                        if let Ok(upstream) =
                            tokio::net::TcpStream::connect((target.as_str(), port)).await
                        {
                            relay(client, upstream).await;
                        }
                    });
                }
            }));
            Ok(local)
        })
    }

    fn forward_unix<'a>(
        &'a self,
        path: &'a str,
        _deadline: std::time::Instant,
    ) -> crate::os::TunnelFuture<'a, std::path::PathBuf> {
        Box::pin(async move {
            self.check_open()?;
            let target = self
                .sockets
                .get(path)
                .cloned()
                .unwrap_or_else(|| std::path::PathBuf::from(path));
            let n = self.tasks.lock().unwrap().len();
            let local = self.dir.join(format!("forward-{n}.sock"));
            let listener = tokio::net::UnixListener::bind(&local).map_err(|e| e.to_string())?;
            let count = self.connections.clone();
            self.keep(tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let target = target.clone();
                    tokio::spawn(async move {
                        if let Ok(upstream) = tokio::net::UnixStream::connect(&target).await {
                            relay(client, upstream).await;
                        }
                    });
                }
            }));
            Ok(local)
        })
    }

    fn socks_proxy(
        &self,
        _deadline: std::time::Instant,
    ) -> crate::os::TunnelFuture<'_, std::net::SocketAddr> {
        Box::pin(async move {
            self.check_open()?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            let names = self.names.clone();
            let count = self.connections.clone();
            self.keep(tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let names = names.clone();
                    tokio::spawn(async move {
                        let _ = socks5_session(client, names).await;
                    });
                }
            }));
            Ok(local)
        })
    }

    fn describe(&self) -> String {
        "ssh relay@test-host:22".into()
    }
}
