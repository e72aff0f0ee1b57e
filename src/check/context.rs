//! What a probe may use while it runs: the executor of the target, the
//! attempt's deadline, the artifacts directory, what the run measured so far
//! and the run's VMs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::Phase;
use crate::os::{CommandExecutor, LocalExecutor, Tunnel};
use crate::vm::registry::Registry;

/// What a probe may use while it runs.
#[derive(Clone)]
pub struct ProbeContext {
    /// Where commands run (this host, ssh, a VM).
    pub executor: Arc<dyn CommandExecutor>,
    /// How network probes reach the host's loopback (`via = "host"`):
    /// `None` when the host is this machine (connect directly).
    pub tunnel: Option<Arc<dyn Tunnel>>,
    /// The target's default for network kinds without a `via` field: true
    /// when the check's host says `via = "host"`.
    pub via_host: bool,
    /// The end of this attempt: every network step must finish before it.
    pub deadline: Instant,
    /// The run's artifacts directory (probes may store evidence files here).
    pub artifacts_dir: PathBuf,
    /// What earlier checks and phases measured (for budget checks).
    pub so_far: Arc<RunSoFar>,
    /// The VMs booted in this run (by `[check.vm]`), owned by the run.
    pub vms: Arc<Registry>,
    /// Sessions the run's checks share (a Matrix login), closed at its end.
    pub sessions: Arc<super::sessions::Sessions>,
}

/// Facts of the run so far: phase wall times and check metrics. The runner
/// records them; `budget` checks read them.
#[derive(Debug, Default)]
pub struct RunSoFar {
    inner: std::sync::Mutex<SoFar>,
}

#[derive(Debug, Default)]
struct SoFar {
    phase_ms: std::collections::BTreeMap<Phase, u64>,
    metrics: std::collections::HashMap<String, std::collections::BTreeMap<String, f64>>,
}

impl RunSoFar {
    pub fn record_phase(&self, phase: Phase, ms: u64) {
        if let Ok(mut s) = self.inner.lock() {
            s.phase_ms.insert(phase, ms);
        }
    }
    pub fn record_metrics(&self, check: &str, metrics: &std::collections::BTreeMap<String, f64>) {
        if let Ok(mut s) = self.inner.lock() {
            s.metrics.insert(check.to_string(), metrics.clone());
        }
    }
    pub fn phase_ms(&self, phase: Phase) -> Option<u64> {
        self.inner.lock().ok()?.phase_ms.get(&phase).copied()
    }
    pub fn metric(&self, check: &str, name: &str) -> Option<f64> {
        self.inner
            .lock()
            .ok()?
            .metrics
            .get(check)?
            .get(name)
            .copied()
    }
}

impl ProbeContext {
    /// Time left in this attempt.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
    /// A context for unit tests: local executor, deadline in `secs`, no VMs.
    pub fn for_tests(secs: u64) -> ProbeContext {
        ProbeContext {
            executor: Arc::new(LocalExecutor),
            tunnel: None,
            via_host: false,
            deadline: Instant::now() + Duration::from_secs(secs),
            artifacts_dir: std::env::temp_dir(),
            so_far: Arc::new(RunSoFar::default()),
            vms: Arc::new(Registry::new()),
            sessions: Arc::new(super::sessions::Sessions::default()),
        }
    }
}
