//! The fixtures of the integration tests that start real servers, kept
//! once: each test binary says `mod common;` and takes what it needs.
//!
//! A server is found through `detect` (the lookup `build.rs` uses to mark
//! the tests of a missing server ignored). A test that needs a server
//! carries `#[cfg_attr(missing = "<server>", ignore = "needs ...")]`; when
//! it runs anyway (SPINUP_SMOKE_REQUIRE_ALL=1) and the server is missing,
//! the fixture fails it and says what to install.

#![allow(dead_code)]

pub mod detect;
pub mod idp;
pub mod postgres;
pub mod prometheus;
pub mod synapse;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use detect::Server;

/// The checkout (the tests run from this package).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `bytes` random bytes as hex: passwords and server secrets.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Fails the test that needs `server` here, which is not installed.
pub fn missing(server: Server) -> ! {
    let why = server
        .missing(&repo())
        .unwrap_or_else(|| "it was found a moment ago".into());
    panic!(
        "this test needs {} (it is ignored where {0} is missing, unless SPINUP_SMOKE_REQUIRE_ALL=1): {why}",
        server.name()
    )
}

/// Whether `GET path` on 127.0.0.1:`port` answers 200.
pub fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    std::net::TcpStream::connect(("127.0.0.1", port))
        .and_then(|mut s| {
            s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"))
        })
        .unwrap_or(false)
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A server process this binary started: dropping it stops the server
/// (SIGTERM, then SIGKILL after 5 s).
pub struct ServerProcess {
    name: String,
    child: Child,
    /// Where the server writes what it says, for the failure messages.
    log: Option<PathBuf>,
}

impl ServerProcess {
    pub fn spawn(name: &str, command: &mut Command, log: Option<&Path>) -> ServerProcess {
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {name} ({}): {e}",
                command.get_program().to_string_lossy()
            )
        });
        ServerProcess {
            name: name.to_string(),
            child,
            log: log.map(Path::to_path_buf),
        }
    }

    /// The server's process id (for the tests that signal it).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Polls `ready` every `every` until it holds; fails the test when the
    /// server exits first or is not ready `within`.
    pub fn wait_ready(
        &mut self,
        within: Duration,
        every: Duration,
        mut ready: impl FnMut() -> bool,
    ) {
        let see = self
            .log
            .as_ref()
            .map(|log| format!("; see {}", log.display()))
            .unwrap_or_default();
        let until = Instant::now() + within;
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before it was ready{see}", self.name);
            }
            assert!(
                Instant::now() < until,
                "{} did not become ready within {} s{see}",
                self.name,
                within.as_secs()
            );
            std::thread::sleep(every);
        }
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: sending SIGTERM to the child this binary started (and has
        // not reaped yet, so its pid is not reused).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a closure when dropped: stops what is not a child process (a
/// PostgreSQL cluster that `pg_ctl` started).
pub struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnDrop<F> {
    pub fn new(f: F) -> OnDrop<F> {
        OnDrop(Some(f))
    }
}

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

type Kept = Box<dyn Any + Send>;

static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

/// Keeps `value` (a server, its directory) until the test binary exits,
/// then drops it, the last kept first. A server shared by every test of
/// a binary lives in a static, which is never dropped otherwise.
pub fn keep_until_exit<T: Send + 'static>(value: T) {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe { libc::atexit(drop_kept) };
    });
    KEPT.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(Box::new(value));
}

extern "C" fn drop_kept() {
    let kept = std::mem::take(&mut *KEPT.lock().unwrap_or_else(|p| p.into_inner()));
    for value in kept.into_iter().rev() {
        // A panic must not unwind out of an atexit handler.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value)));
    }
}

/// The server that every test of a binary shares, started by the first
/// test that asks. A failed start is kept too: it is not retried by every
/// test, and each test that needs the server fails with its reason.
pub fn shared<T>(
    cell: &'static OnceLock<Result<T, String>>,
    what: &str,
    start: impl FnOnce() -> T,
) -> &'static T {
    let started = cell.get_or_init(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(start)).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into())
        })
    });
    match started {
        Ok(server) => server,
        Err(why) => panic!("the test {what} did not start: {why}"),
    }
}
