//! The `Tunnel` trait: how a probe reaches a service that listens only on
//! a remote host's loopback (PostgreSQL on a P6 host, the host's D-Bus
//! system bus), through the connection the run already holds to that host.
//! A local host has no tunnel: probes connect directly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Instant;

/// What a tunnel step returns: the thing asked for, or why not (in words
/// a person can act on).
pub type TunnelFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Forwards through a remote host. Every method finishes before `deadline`.
pub trait Tunnel: Send + Sync {
    /// A local address whose connections reach `host:port` as the remote
    /// host sees it (`127.0.0.1` is the remote host's loopback).
    fn forward_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        deadline: Instant,
    ) -> TunnelFuture<'a, SocketAddr>;
    /// A local unix socket that reaches the remote unix socket `path`.
    fn forward_unix<'a>(&'a self, path: &'a str, deadline: Instant) -> TunnelFuture<'a, PathBuf>;
    /// A local SOCKS5 proxy whose connections are made from the remote
    /// host, names resolved there (for HTTP clients that follow links).
    fn socks_proxy(&self, deadline: Instant) -> TunnelFuture<'_, SocketAddr>;
    /// Where the tunnel leads, for evidence ("ssh rave@p6.example:22").
    fn describe(&self) -> String;
}
