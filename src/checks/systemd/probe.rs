//! Reads systemd's state in a VM from the run's registry over D-Bus
//! (zbus), through an ssh forward of the guest's system bus (`vm::bus`),
//! bounded by the deadline; only what the assertion needs is queried.

use std::time::Instant;

use zbus::zvariant::OwnedObjectPath;

use super::judge::{BootTimestamps, Facts, FailedUnit, UnitState};
use super::spec::{Assertion, Spec};
use crate::check::ProbeContext;
use crate::vm::bus;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// Reads systemd's state over D-Bus; a missing VM, bus or answer is the
/// facts' `error`. The error is a table incomplete for its assertion.
pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    spec.validate()?;
    let mut facts = Facts {
        vm: spec.vm.clone(),
        ..Facts::default()
    };
    let Some(vm) = ctx.vms.get(&spec.vm) else {
        facts.error = Some(ctx.vms.not_running_message(&spec.vm));
        return Ok(facts);
    };
    let started = Instant::now();
    let gathered = tokio::time::timeout(ctx.remaining(), async {
        let conn = bus::connect_system_bus(&vm, ctx.deadline).await?;
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
            let path: OwnedObjectPath = manager.call("LoadUnit", &(name.as_str(),)).await?;
            let unit = proxy(conn, path.as_str(), "org.freedesktop.systemd1.Unit").await?;
            let n_restarts = if name.ends_with(".service") {
                let service =
                    proxy(conn, path.as_str(), "org.freedesktop.systemd1.Service").await?;
                service.get_property::<u32>("NRestarts").await.ok()
            } else {
                None
            };
            facts.unit = Some(UnitState {
                name,
                load_state: unit.get_property("LoadState").await?,
                active_state: unit.get_property("ActiveState").await?,
                sub_state: unit.get_property("SubState").await?,
                n_restarts,
            });
        }
    }
    Ok(())
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

    #[tokio::test]
    async fn a_missing_vm_or_unit_fails_with_the_fix() {
        let ctx = ProbeContext::for_tests(5);
        let s: Spec = toml::from_str("vm = \"absent\"\nassert = \"system_running\"").unwrap();
        let v = run(&s, &ctx).await;
        assert!(
            !v.pass && v.found.contains("no running VM named `absent`"),
            "{v:?}"
        );
        let s: Spec = toml::from_str("vm = \"absent\"\nassert = \"unit_active\"").unwrap();
        let v = run(&s, &ctx).await;
        assert!(!v.pass && v.found.contains("needs unit"), "{v:?}");
    }
}
