#!/usr/bin/env bash
# Builds the demo guest image that the `build`, `boot` and `sandbox` phases
# run under QEMU: Debian bookworm (debootstrap minbase) with systemd, dbus,
# openssh-server, PostgreSQL and a kernel, as a qcow2 root filesystem plus
# the kernel and initrd copied out for direct kernel boot.
#
#   scripts/build-guest-image.sh [OUT_DIR]
#
# The build is cached under a content key (sha256 of this script, which
# holds the package list): $SPINUP_SMOKE_CACHE_DIR/guest/<key>/ (default
# ~/.cache/spinup-smoke/guest/<key>/). A second run with the same script
# does not rebuild. When OUT_DIR is given, guest.qcow2, vmlinuz and
# initrd.img are linked (or copied) there from the cache.
#
# On success the last lines of stdout are `key=value` facts:
#   image=/path/guest.qcow2 kernel=/path/vmlinuz initrd=/path/initrd.img
#   cache_key=<hex> cached=true|false
#
# Network: only the Debian mirror ($SPINUP_SMOKE_DEBIAN_MIRROR, default
# http://deb.debian.org/debian). Needs root, debootstrap, mkfs.ext4 (with
# -d) and qemu-img. Takes about 4 minutes the first time.
#
# The image's contract with spinup-smoke (src/vm/):
#   - root is the whole disk, /dev/vda (ext4, no partition table);
#   - the serial console is ttyS0;
#   - an ssh public key passed on the kernel command line as
#     `spinup.ssh_key=<type>:<base64>` is installed for root at boot by
#     spinup-ssh-key.service (before ssh.service);
#   - systemd-networkd runs DHCP on every en*/eth* link (QEMU user-mode NIC).
set -euo pipefail

PACKAGES="systemd,systemd-sysv,dbus,openssh-server,postgresql,linux-image-amd64,initramfs-tools,iproute2,procps,coreutils,util-linux,kmod,udev,ca-certificates"
SUITE="bookworm"
IMAGE_SIZE="3G"

die() {
    echo "build-guest-image: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it); try: sudo $0 $*"
for tool in debootstrap mkfs.ext4 qemu-img sha256sum; do
    command -v "$tool" >/dev/null || die "\`$tool\` not found; install it: apt-get install debootstrap e2fsprogs qemu-utils"
done

script_path="$(readlink -f "${BASH_SOURCE[0]}")"
cache_root="${SPINUP_SMOKE_CACHE_DIR:-${HOME}/.cache/spinup-smoke}/guest"
mirror="${SPINUP_SMOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
key="$(sha256sum "$script_path" | cut -c1-16)"
cache_dir="$cache_root/$key"
out_dir="${1:-$cache_dir}"

report() {
    local dir="$1" cached="$2"
    echo "image=$dir/guest.qcow2"
    echo "kernel=$dir/vmlinuz"
    echo "initrd=$dir/initrd.img"
    echo "cache_key=$key"
    echo "cached=$cached"
}

publish() {
    local cached="$1"
    if [ "$out_dir" != "$cache_dir" ]; then
        mkdir -p "$out_dir"
        for f in guest.qcow2 vmlinuz initrd.img; do
            rm -f "$out_dir/$f"
            ln "$cache_dir/$f" "$out_dir/$f" 2>/dev/null || cp "$cache_dir/$f" "$out_dir/$f"
        done
    fi
    report "$out_dir" "$cached"
}

if [ -f "$cache_dir/complete" ]; then
    echo "build-guest-image: cache hit $cache_dir" >&2
    publish true
    exit 0
fi

mkdir -p "$cache_root"
# One builder per key at a time; a second caller waits and then hits the cache.
exec 9>"$cache_root/$key.lock"
flock 9
if [ -f "$cache_dir/complete" ]; then
    publish true
    exit 0
fi

work="$(mktemp -d "$cache_root/build-$key.XXXXXX")"
rootfs="$work/rootfs"
cleanup() {
    for m in proc sys dev/pts dev; do
        umount -l "$rootfs/$m" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

started=$(date +%s)
echo "build-guest-image: debootstrap $SUITE into $rootfs (mirror $mirror)" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" >&2

echo "build-guest-image: configuring the guest" >&2
echo "spinup-guest" >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 spinup-guest\n' >"$rootfs/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$rootfs/etc/fstab"
# Every boot gets a fresh machine id.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"

mkdir -p "$rootfs/etc/systemd/network"
cat >"$rootfs/etc/systemd/network/10-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF

cat >"$rootfs/usr/local/sbin/spinup-ssh-key" <<'EOF'
#!/bin/sh
# Installs the key given as spinup.ssh_key=<type>:<base64> on the kernel
# command line as root's only authorized key.
set -eu
for word in $(cat /proc/cmdline); do
    case "$word" in
    spinup.ssh_key=*)
        value="${word#spinup.ssh_key=}"
        install -d -m 0700 /root/.ssh
        printf '%s %s spinup-smoke\n' "${value%%:*}" "${value#*:}" >/root/.ssh/authorized_keys
        chmod 0600 /root/.ssh/authorized_keys
        ;;
    esac
done
EOF
chmod 0755 "$rootfs/usr/local/sbin/spinup-ssh-key"

cat >"$rootfs/etc/systemd/system/spinup-ssh-key.service" <<'EOF'
[Unit]
Description=Install the ssh key from the kernel command line
Before=ssh.service
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/spinup-ssh-key
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
EOF

mkdir -p "$rootfs/etc/ssh/sshd_config.d"
cat >"$rootfs/etc/ssh/sshd_config.d/spinup.conf" <<'EOF'
PasswordAuthentication no
PermitRootLogin prohibit-password
UseDNS no
EOF

chroot "$rootfs" systemctl enable systemd-networkd.service spinup-ssh-key.service ssh.service >&2
# Nothing waits for "online": user-mode DHCP answers at once.
chroot "$rootfs" systemctl mask systemd-networkd-wait-online.service >&2
chroot "$rootfs" apt-get clean
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin

mkdir -p "$work/out"
cp "$(readlink -f "$rootfs/vmlinuz")" "$work/out/vmlinuz"
cp "$(readlink -f "$rootfs/initrd.img")" "$work/out/initrd.img"

echo "build-guest-image: mkfs.ext4 -d into a $IMAGE_SIZE raw file" >&2
truncate -s "$IMAGE_SIZE" "$work/root.raw"
mkfs.ext4 -q -F -L spinup-root -d "$rootfs" "$work/root.raw" >&2
qemu-img convert -f raw -O qcow2 "$work/root.raw" "$work/out/guest.qcow2" >&2
rm -f "$work/root.raw"

rm -rf "$cache_dir"
mv "$work/out" "$cache_dir"
echo "$(($(date +%s) - started))" >"$cache_dir/build_seconds"
touch "$cache_dir/complete"
echo "build-guest-image: built in $(cat "$cache_dir/build_seconds")s into $cache_dir" >&2
publish false
