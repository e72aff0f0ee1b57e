#!/usr/bin/env bash
# Builds the demo guest image that the `build`, `boot` and `sandbox` phases
# run under QEMU, and the host that the demo's security phase examines:
# Debian bookworm (debootstrap minbase) with systemd, dbus, openssh-server,
# PostgreSQL, nftables, nginx and a kernel, as a qcow2 root filesystem plus
# the kernel and initrd copied out for direct kernel boot. It is hardened
# like a RAVE P6 host (nixos/rave-p6.nix): key-only sshd with modern
# algorithms, an nftables input chain that drops by default and admits only
# tcp 22 and 3002, nginx with TLS 1.2+ on 3002 as the only other listener,
# and secrets under /run/secrets (ramfs) with mode 0400 and their owners.
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
#   build_started=<UTC time> build_finished=<UTC time> build_seconds=<n>
# The build_* lines are the real build's, recorded in the cache directory
# (build_info) when it was built and read back on a cache hit, so a
# `[check.build]` judges the build's time, not the cache lookup's.
#
# Not bit-for-bit reproducible: every build makes a new ssh host key, and
# debootstrap, dpkg and mkfs.ext4 write the build's timestamps and a random
# filesystem UUID into the image (docs/checks.md, `build`).
#
# Network: only the Debian mirror ($SPINUP_SMOKE_DEBIAN_MIRROR, default
# http://deb.debian.org/debian). Needs root, debootstrap, mkfs.ext4 (with
# -d) and qemu-img. Takes about 6 minutes the first time.
#
# The image's contract with spinup-smoke (src/vm/):
#   - root is the whole disk, /dev/vda (ext4, no partition table);
#   - the serial console is ttyS0;
#   - an ssh public key passed on the kernel command line as
#     `spinup.ssh_key=<type>:<base64>` is installed for root at boot by
#     spinup-ssh-key.service (before ssh.service), where sshd admits root
#     with a key only; with `spinup.ssh_user=rave` as well, it is installed
#     for the user rave (passwordless sudo) instead and sshd admits no root
#     login at all (PermitRootLogin no, as on P6);
#   - systemd-networkd runs DHCP on every en*/eth* link (QEMU user-mode NIC);
#   - the ssh host key is made once, at build: every boot of the image
#     presents the key in ssh_host_ed25519_key.pub (published beside it), so
#     a client can pin it;
#   - secrets: QEMU passes a tar as the fw_cfg file `opt/rave/secrets`
#     (`-fw_cfg name=opt/rave/secrets,file=BUNDLE`) holding one file per
#     secret and a `manifest` of `<name> <owner> <mode>` lines; at boot,
#     before nginx, spinup-secrets.service mounts a ramfs on /run/secrets and
#     installs each secret there with that owner and mode, as sops-nix does
#     at activation. `tls_key` and `tls_cert` are nginx's key and
#     certificate chain. Without a bundle /run/secrets stays empty and nginx
#     does not start (its condition, not a failure).
#   - users nginx, gitlab, grafana and matrix-synapse own those secrets
#     (the owners of nixos/facts.nix secrets.files).
set -euo pipefail

PACKAGES="systemd,systemd-sysv,dbus,openssh-server,postgresql,linux-image-amd64,initramfs-tools,iproute2,procps,coreutils,util-linux,kmod,udev,ca-certificates,nftables,nginx-light,netcat-openbsd,sudo"
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
    echo "host_key=$dir/ssh_host_ed25519_key.pub"
    echo "cache_key=$key"
    echo "cached=$cached"
    # The real build's times (absent from a cache without them: the
    # validator then says the build time is unknown).
    [ ! -f "$cache_dir/build_info" ] || cat "$cache_dir/build_info"
}

publish() {
    local cached="$1"
    if [ "$out_dir" != "$cache_dir" ]; then
        mkdir -p "$out_dir"
        for f in guest.qcow2 vmlinuz initrd.img ssh_host_ed25519_key.pub; do
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
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
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
# command line as the only authorized key of root, or of the user named by
# spinup.ssh_user=rave, in which case sshd admits no root login.
set -eu
key=""
user=root
for word in $(cat /proc/cmdline); do
    case "$word" in
    spinup.ssh_key=*) key="${word#spinup.ssh_key=}" ;;
    spinup.ssh_user=rave) user=rave ;;
    esac
done
[ -n "$key" ] || exit 0
home="$(getent passwd "$user" | cut -d: -f6)"
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
printf '%s %s spinup-smoke\n' "${key%%:*}" "${key#*:}" >"$home/.ssh/authorized_keys"
chown "$user:$user" "$home/.ssh/authorized_keys"
chmod 0600 "$home/.ssh/authorized_keys"
if [ "$user" != root ]; then
    # Read before spinup.conf: the first value wins.
    echo "PermitRootLogin no" >/etc/ssh/sshd_config.d/00-no-root-login.conf
fi
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

# sshd: keys only, root only with a key (the boot and sandbox phases log in
# as root with the key from the kernel command line; spinup.ssh_user=rave
# turns root login off), the modern algorithms of NixOS's defaults, one
# ed25519 host key.
mkdir -p "$rootfs/etc/ssh/sshd_config.d"
cat >"$rootfs/etc/ssh/sshd_config.d/spinup.conf" <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AuthenticationMethods publickey
PermitEmptyPasswords no
HostKey /etc/ssh/ssh_host_ed25519_key
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
X11Forwarding no
UseDNS no
EOF
rm -f "$rootfs"/etc/ssh/ssh_host_*
chroot "$rootfs" ssh-keygen -q -t ed25519 -N "" -C "spinup-guest" -f /etc/ssh/ssh_host_ed25519_key >&2

# The firewall: P6's table (inet nixos-fw, chain input), policy drop.
cat >"$rootfs/etc/nftables.conf" <<'EOF'
#!/usr/sbin/nft -f
flush ruleset

table inet nixos-fw {
    chain input {
        type filter hook input priority filter; policy drop;
        iifname "lo" accept
        ct state vmap { invalid : drop, established : accept, related : accept }
        tcp dport { 22, 3002 } accept
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
    }
}
EOF

# The administrator of the demo's guest host: key-only, passwordless sudo.
chroot "$rootfs" useradd --create-home --shell /bin/bash --groups sudo rave
chroot "$rootfs" usermod -p '*' rave
echo "rave ALL=(ALL:ALL) NOPASSWD: ALL" >"$rootfs/etc/sudoers.d/rave"
chmod 0440 "$rootfs/etc/sudoers.d/rave"

# The owners of the secrets (nixos/facts.nix secrets.files).
for user in nginx gitlab grafana matrix-synapse; do
    chroot "$rootfs" useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
done

cat >"$rootfs/usr/local/sbin/spinup-secrets" <<'EOF'
#!/bin/sh
# Places the secrets QEMU passed as the fw_cfg file opt/rave/secrets (a tar:
# one file per secret and a manifest of "<name> <owner> <mode>" lines) on a
# ramfs at /run/secrets, each with its owner and mode, as sops-nix does at
# activation.
set -eu
bundle=/sys/firmware/qemu_fw_cfg/by_name/opt/rave/secrets/raw
modprobe qemu_fw_cfg 2>/dev/null || true
install -d -m 0751 /run/secrets
mountpoint -q /run/secrets || mount -t ramfs -o mode=0751 ramfs /run/secrets
if [ ! -r "$bundle" ]; then
    echo "spinup-secrets: no bundle (fw_cfg opt/rave/secrets): no secrets placed"
    exit 0
fi
umask 077
work=/run/secrets/.bundle
rm -rf "$work"
install -d -m 0700 "$work"
tar -x -f "$bundle" -C "$work" --no-same-owner
count=0
while read -r name owner mode; do
    case "$name" in
    "" | *[!a-z0-9_]*) echo "spinup-secrets: bad secret name '$name' in the manifest" >&2; exit 1 ;;
    esac
    install -m "$mode" -o "$owner" -g "$(id -gn "$owner")" "$work/$name" "/run/secrets/$name"
    count=$((count + 1))
done <"$work/manifest"
rm -rf "$work"
echo "spinup-secrets: placed $count secrets under /run/secrets"
EOF
chmod 0755 "$rootfs/usr/local/sbin/spinup-secrets"

cat >"$rootfs/etc/systemd/system/spinup-secrets.service" <<'EOF'
[Unit]
Description=Place the secrets passed by QEMU under /run/secrets
DefaultDependencies=no
After=local-fs.target systemd-modules-load.service
Before=nginx.service sysinit.target
Conflicts=shutdown.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/spinup-secrets
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
EOF

# nginx: TLS 1.2+ on 3002 with the key and chain from /run/secrets, as the
# nginx user; nothing on 80.
sed -i 's/^user .*;/user nginx;/' "$rootfs/etc/nginx/nginx.conf"
rm -f "$rootfs/etc/nginx/sites-enabled/default"
cat >"$rootfs/etc/nginx/sites-enabled/rave" <<'EOF'
server {
    listen 3002 ssl;
    server_name rave.local;
    ssl_certificate /run/secrets/tls_cert;
    ssl_certificate_key /run/secrets/tls_key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
        default_type text/plain;
        return 200 "RAVE demo guest\n";
    }
}
EOF
mkdir -p "$rootfs/etc/systemd/system/nginx.service.d"
cat >"$rootfs/etc/systemd/system/nginx.service.d/secrets.conf" <<'EOF'
[Unit]
After=spinup-secrets.service
Wants=spinup-secrets.service
ConditionPathExists=/run/secrets/tls_key
EOF

chroot "$rootfs" systemctl enable systemd-networkd.service spinup-ssh-key.service ssh.service nftables.service spinup-secrets.service nginx.service >&2
# Nothing waits for "online": user-mode DHCP answers at once.
chroot "$rootfs" systemctl mask systemd-networkd-wait-online.service >&2
chroot "$rootfs" apt-get clean
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin

mkdir -p "$work/out"
cp "$(readlink -f "$rootfs/vmlinuz")" "$work/out/vmlinuz"
cp "$(readlink -f "$rootfs/initrd.img")" "$work/out/initrd.img"
cp "$rootfs/etc/ssh/ssh_host_ed25519_key.pub" "$work/out/ssh_host_ed25519_key.pub"

echo "build-guest-image: mkfs.ext4 -d into a $IMAGE_SIZE raw file" >&2
truncate -s "$IMAGE_SIZE" "$work/root.raw"
mkfs.ext4 -q -F -L spinup-root -d "$rootfs" "$work/root.raw" >&2
qemu-img convert -f raw -O qcow2 "$work/root.raw" "$work/out/guest.qcow2" >&2
rm -f "$work/root.raw"

rm -rf "$cache_dir"
mv "$work/out" "$cache_dir"
echo "$(($(date +%s) - started))" >"$cache_dir/build_seconds"
{
    echo "build_started=$started_at"
    echo "build_finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "build_seconds=$(cat "$cache_dir/build_seconds")"
} >"$cache_dir/build_info"
touch "$cache_dir/complete"
echo "build-guest-image: built in $(cat "$cache_dir/build_seconds")s into $cache_dir" >&2
publish false
