//! Reaching a guest's D-Bus system bus from the host: an ssh unix-socket
//! forward (`ssh -N -L <work>/system_bus.sock:/run/dbus/system_bus_socket`)
//! made once per VM and kept until teardown, then a zbus connection over
//! that local socket. The guest's dbus-daemon sees sshd's connection as
//! root (uid 0), so the EXTERNAL authentication claims uid 0 whatever this
//! process's uid is.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::machine::RunningVm;

/// The guest's system bus socket.
pub const GUEST_SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// A zbus connection to the guest's system bus, made before `deadline`.
pub async fn connect_system_bus(
    vm: &RunningVm,
    deadline: Instant,
) -> Result<zbus::Connection, String> {
    let socket = forward_socket(vm, deadline).await?;
    let connect = async {
        let stream = tokio::net::UnixStream::connect(&socket)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        zbus::connection::Builder::unix_stream(stream)
            .user_id(0)
            .build()
            .await
            .map_err(|e| format!("D-Bus handshake with the guest's system bus failed: {e}"))
    };
    tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), connect)
        .await
        .map_err(|_| "connecting to the guest's system bus timed out at the deadline".to_string())?
}

/// The local socket forwarded to the guest's system bus (made on first use).
async fn forward_socket(vm: &RunningVm, deadline: Instant) -> Result<PathBuf, String> {
    let mut slot = vm.bus_socket.lock().await;
    if let Some(path) = slot.as_ref() {
        if path.exists() {
            return Ok(path.clone());
        }
    }
    let socket = vm.work_dir.join("system_bus.sock");
    let _ = std::fs::remove_file(&socket);
    let ssh = vm.executor();
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.args(ssh.ssh_options(deadline))
        .args(["-N", "-o", "ExitOnForwardFailure=yes"])
        .args(["-o", "StreamLocalBindUnlink=yes", "-L"])
        .arg(format!("{}:{GUEST_SYSTEM_BUS}", socket.display()))
        .arg(ssh.destination())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start ssh for the system bus forward: {e}"))?;
    loop {
        if socket.exists() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = err.read_to_string(&mut stderr).await;
            }
            return Err(format!(
                "the ssh forward of the guest's system bus exited ({status}): {}",
                stderr.trim()
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.start_kill();
            return Err(
                "the ssh forward of the guest's system bus did not come up before the deadline"
                    .into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    vm.adopt_helper(child);
    *slot = Some(socket.clone());
    Ok(socket)
}
