//! Reads systemd's state over D-Bus (zbus), bounded by the deadline; only
//! what the assertion needs is queried. The bus: a VM's from the run's
//! registry (an ssh forward of the guest's bus, `vm::bus`), else the
//! check's host's: its system bus forwarded through the host's tunnel, or
//! this machine's own system bus when the host is local.

use std::path::Path;
use std::time::Instant;

use zbus::zvariant::OwnedObjectPath;

use super::judge::{BootTimestamps, Facts, FailedUnit, UnitState};
use super::spec::{Assertion, Spec};
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::os::CommandSpec;
use crate::vm::bus;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// The system bus socket of a systemd host.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// Reads systemd's state over D-Bus; a missing VM, bus or answer is the
/// facts' `error`. The error is a table incomplete for its assertion.
pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    spec.validate()?;
    let mut facts = Facts {
        place: place(spec, ctx),
        ..Facts::default()
    };
    let started = Instant::now();
    let gathered = tokio::time::timeout(ctx.remaining(), async {
        let conn = connect(spec, ctx, Path::new(SYSTEM_BUS)).await?;
        gather(spec, &conn, &mut facts)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    match gathered {
        Ok(Ok(())) => {}
        Ok(Err(e)) => facts.error = Some(e),
        Err(_) => facts.error = Some("D-Bus queries did not finish before the deadline".into()),
    }
    facts.dbus_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(facts)
}

/// Where the check reads systemd, as the verdict says it.
fn place(spec: &Spec, ctx: &ProbeContext) -> String {
    match (&spec.vm, &ctx.tunnel) {
        (Some(vm), _) => format!("in VM `{vm}`"),
        (None, Some(tunnel)) => format!("on {}", tunnel.describe()),
        (None, None) => "on this host".into(),
    }
}

/// The system bus of the check's machine. `local_bus` is this machine's
/// system bus socket (a parameter for tests).
async fn connect(
    spec: &Spec,
    ctx: &ProbeContext,
    local_bus: &Path,
) -> Result<zbus::Connection, String> {
    if let Some(name) = &spec.vm {
        let Some(vm) = ctx.vms.get(name) else {
            return Err(ctx.vms.not_running_message(name));
        };
        return bus::connect_system_bus(&vm, ctx.deadline).await;
    }
    match &ctx.tunnel {
        Some(tunnel) => {
            let route = Route::Tunnel(tunnel.clone());
            let local = via::unix_endpoint(&route, Path::new(SYSTEM_BUS), ctx.deadline).await?;
            // The host's bus authenticates the forwarded connection as the
            // user the tunnel logged in as: claim that uid (EXTERNAL).
            let uid = remote_uid(ctx).await?;
            handshake(&local, Some(uid), &format!("the system bus of {}", tunnel.describe())).await
        }
        None => {
            if !local_bus.exists() {
                return Err(format!(
                    "no system bus at {}: is systemd running on this host?",
                    local_bus.display()
                ));
            }
            handshake(local_bus, None, "this host's system bus").await
        }
    }
}

/// The uid the tunnel's connections come from on the host: the login
/// user's, also when the host runs commands through `sudo` (then
/// `SUDO_UID` is the login user's, and `id -u` would say 0).
async fn remote_uid(ctx: &ProbeContext) -> Result<u32, String> {
    let command = CommandSpec::new("sh", &["-c", "echo \"${SUDO_UID:-$(id -u)}\""]);
    let output = ctx
        .executor
        .run(&command, ctx.deadline)
        .await
        .map_err(|e| format!("cannot learn the host's user id (`id -u` via {}): {e}", ctx.executor.describe()))?;
    output
        .stdout_text()
        .trim()
        .parse::<u32>()
        .map_err(|_| {
            format!(
                "`id -u` via {} printed {:?}, not a user id",
                ctx.executor.describe(),
                crate::check::excerpt(output.stdout_text().trim(), 100)
            )
        })
}

async fn handshake(
    socket: &Path,
    uid: Option<u32>,
    what: &str,
) -> Result<zbus::Connection, String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("cannot connect to {what} ({}): {e}", socket.display()))?;
    let mut builder = zbus::connection::Builder::unix_stream(stream);
    if let Some(uid) = uid {
        builder = builder.user_id(uid);
    }
    builder
        .build()
        .await
        .map_err(|e| format!("D-Bus handshake with {what} failed: {e}"))
}

async fn gather(spec: &Spec, conn: &zbus::Connection, facts: &mut Facts) -> zbus::Result<()> {
    let manager = proxy(conn, MANAGER_PATH, MANAGER).await?;
    match spec.assert {
        Assertion::SystemRunning | Assertion::BootFinished => {
            facts.system_state = Some(manager.get_property::<String>("SystemState").await?);
            facts.failed_units = Some(failed_units(&manager).await?);
            facts.timestamps = Some(timestamps(&manager).await?);
        }
        Assertion::NoFailedUnits => {
            facts.failed_units = Some(failed_units(&manager).await?);
        }
        Assertion::UnitActive => {
            let name = spec.unit.clone().unwrap_or_default();
            facts.unit = Some(unit_state(conn, &manager, &name).await?);
        }
        Assertion::UnitsActive => {
            let mut units = Vec::new();
            for name in &spec.units {
                units.push(unit_state(conn, &manager, name).await?);
            }
            facts.units = Some(units);
        }
    }
    Ok(())
}

/// LoadState, ActiveState, SubState and (services) NRestarts of one unit.
async fn unit_state(
    conn: &zbus::Connection,
    manager: &zbus::Proxy<'_>,
    name: &str,
) -> zbus::Result<UnitState> {
    let path: OwnedObjectPath = manager.call("LoadUnit", &(name,)).await?;
    let unit = proxy(conn, path.as_str(), "org.freedesktop.systemd1.Unit").await?;
    let n_restarts = if name.ends_with(".service") {
        let service = proxy(conn, path.as_str(), "org.freedesktop.systemd1.Service").await?;
        service.get_property::<u32>("NRestarts").await.ok()
    } else {
        None
    };
    Ok(UnitState {
        name: name.to_string(),
        load_state: unit.get_property("LoadState").await?,
        active_state: unit.get_property("ActiveState").await?,
        sub_state: unit.get_property("SubState").await?,
        n_restarts,
    })
}

async fn proxy<'a>(
    conn: &zbus::Connection,
    path: &'a str,
    interface: &'a str,
) -> zbus::Result<zbus::Proxy<'a>> {
    zbus::proxy::Builder::new(conn)
        .destination(SYSTEMD)?
        .path(path)?
        .interface(interface)?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

async fn failed_units(manager: &zbus::Proxy<'_>) -> zbus::Result<Vec<FailedUnit>> {
    let rows: Vec<UnitRow> = manager
        .call("ListUnitsFiltered", &(vec!["failed"],))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| FailedUnit {
            name: r.0,
            description: r.1,
            active_state: r.3,
            sub_state: r.4,
        })
        .collect())
}

async fn timestamps(manager: &zbus::Proxy<'_>) -> zbus::Result<BootTimestamps> {
    let get = |name: &'static str| async move { manager.get_property::<u64>(name).await };
    Ok(BootTimestamps {
        firmware_us: get("FirmwareTimestampMonotonic").await?,
        loader_us: get("LoaderTimestampMonotonic").await?,
        kernel_realtime_us: get("KernelTimestamp").await?,
        initrd_us: get("InitRDTimestampMonotonic").await?,
        userspace_us: get("UserspaceTimestampMonotonic").await?,
        finish_us: get("FinishTimestampMonotonic").await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::systemd::run;
    use crate::checks::testutil::RelayTunnel;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_missing_vm_fails_with_the_fix() {
        let ctx = ProbeContext::for_tests(5);
        let s: Spec = toml::from_str("vm = \"absent\"\nassert = \"system_running\"").unwrap();
        let v = run(&s, &ctx).await;
        assert!(
            !v.pass && v.found.contains("no running VM named `absent`"),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn a_local_host_without_a_system_bus_fails_with_the_question() {
        let ctx = ProbeContext::for_tests(5);
        let s: Spec = toml::from_str("assert = \"system_running\"").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("system_bus_socket");
        let e = connect(&s, &ctx, &missing).await.unwrap_err();
        assert_eq!(
            e,
            format!(
                "no system bus at {}: is systemd running on this host?",
                missing.display()
            )
        );
    }

    /// Through a tunnel the host's bus socket is forwarded: a refusing
    /// tunnel and a forward to nothing fail with their reasons, and the
    /// verdict names the host.
    #[tokio::test]
    async fn the_hosts_bus_is_reached_through_the_tunnel() {
        let dir = tempfile::tempdir().unwrap();
        let tunnel = Arc::new(
            RelayTunnel::new().map_socket(SYSTEM_BUS, &dir.path().join("nothing-here.sock")),
        );
        let mut ctx = ProbeContext::for_tests(5);
        ctx.tunnel = Some(tunnel.clone());
        let s: Spec =
            toml::from_str("assert = \"units_active\"\nunits = [\"postgresql.service\"]").unwrap();
        let v = run(&s, &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(v.expected.contains("on ssh relay@test-host:22"), "{v:?}");
        assert!(v.found.contains("D-Bus handshake with the system bus of ssh relay@test-host:22 failed"), "{v:?}");
        assert_eq!(tunnel.connections(), 1);
        tunnel.refuse();
        let v = run(&s, &ctx).await;
        assert!(
            !v.pass && v.found.contains("cannot forward /run/dbus/system_bus_socket through ssh relay@test-host:22"),
            "{v:?}"
        );
    }
}
