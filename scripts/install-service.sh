#!/usr/bin/env bash
# Installs fieldgate as a systemd service from this checkout:
#   sudo scripts/install-service.sh [--prefix /opt/fieldgate] [--config-dir /etc/fieldgate]
#                                   [--data-dir /var/lib/fieldgate] [--user fieldgate]
#                                   [--root DIR]  (stage into DIR: no user, no npm, no systemctl; for packaging)
#                                   [--node PATH] [--prebuilt]  (the offline bundle's install.sh: its own node; its node_modules copied, no npm)
# Creates the system user (in the serial group), /etc/fieldgate and /var/lib/fieldgate, copies the app,
# installs its production dependencies, links /usr/local/bin/fieldgate, writes
# /etc/systemd/system/fieldgate.service and starts it.
set -euo pipefail

prefix=/opt/fieldgate
config_dir=/etc/fieldgate
data_dir=/var/lib/fieldgate
user=fieldgate
root=""
node_bin=""
prebuilt=false
while [ $# -gt 0 ]; do
  case "$1" in
    --node) node_bin="$2"; shift 2 ;;
    --prebuilt) prebuilt=true; shift ;;
    --prefix) prefix="$2"; shift 2 ;;
    --config-dir) config_dir="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install-service.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
[ -n "$node_bin" ] || node_bin="$(command -v node || true)"
[ -n "$node_bin" ] || { echo "install-service.sh: node (>= 20) is not installed" >&2; exit 1; }
staged=false
[ -n "$root" ] && staged=true
if ! $staged && [ "$(id -u)" -ne 0 ]; then
  echo "install-service.sh: run as root (sudo), or with --root DIR to stage files" >&2
  exit 1
fi

# The group that owns serial ports: dialout on Debian and Raspberry Pi OS, uucp on some others.
serial_group=dialout
getent group dialout >/dev/null 2>&1 || serial_group=uucp

step() { printf '==> %s\n' "$*"; }

if ! $staged; then
  if ! id "$user" >/dev/null 2>&1; then
    step "creating system user $user"
    useradd --system --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin "$user"
  fi
  step "adding $user to $serial_group (serial ports)"
  usermod -a -G "$serial_group" "$user"
fi

step "installing the app in $root$prefix"
mkdir -p "$root$prefix" "$root$config_dir" "$root$data_dir"
excludes=(--exclude=./data --exclude=./.git --exclude=./test-output)
$prebuilt || excludes+=(--exclude=./node_modules)
tar -C "$src" "${excludes[@]}" -cf - . | tar -C "$root$prefix" -xf -
if ! $staged && ! $prebuilt; then
  (cd "$prefix" && npm ci --omit=dev --no-audit --no-fund)
fi

# The technician's commands on the PATH: fieldgate validate, read, scan, tail...
mkdir -p "$root/usr/local/bin"
ln -sfn "$prefix/bin/fieldgate.js" "$root/usr/local/bin/fieldgate"

if [ ! -e "$root$config_dir/config.yaml" ]; then
  step "writing an example configuration to $config_dir/config.yaml (edit it, then: fieldgate validate -c $config_dir/config.yaml)"
  sed "s#dataDir: .*#dataDir: $data_dir#" "$src/config/village-water.yaml" > "$root$config_dir/config.yaml"
fi

# V8 tuned for a small device without slowing its code: a 2 MiB young generation (node's default grows to 16 MiB
# a semi-space) and an old generation that grows by 30 % of what survives instead of V8's eager default.
# About 35 MiB less RSS at 1 Hz and at saturation; --optimize-for-size saves no more and costs a third of the
# throughput (docs/BENCHMARKS.md, e2e and footprint).
node_flags="--max-semi-space-size=2 --heap-growing-percent=30"
# glibc malloc for a small device: two arenas instead of eight per core, and a fixed 128 KiB mmap threshold so
# large freed blocks go back to the system instead of raising the threshold and staying in the heap. About
# 5 MiB less RSS at 1 Hz and at saturation, no measurable cost (docs/BENCHMARKS.md, footprint).
malloc_env="MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072"

# Under /var/lib, systemd itself (re)creates the data directory at every start, owned by the service user:
# a data directory deleted while running is back after the restart instead of failing ReadWritePaths.
state_dir=""
case "$data_dir" in
  /var/lib/?*) state_dir="StateDirectory=${data_dir#/var/lib/}
StateDirectoryMode=0750" ;;
esac

unit_dir="$root/etc/systemd/system"
mkdir -p "$unit_dir"
step "writing $unit_dir/fieldgate.service"
cat > "$unit_dir/fieldgate.service" <<UNIT
[Unit]
Description=fieldgate field gateway (Modbus and line sensors to MQTT)
Documentation=file://$prefix/README.md
After=network-online.target time-sync.target
Wants=network-online.target
# Restart=always alone retries a permanent error (an outbox that cannot be opened, a refused configuration)
# forever: five failed starts within five minutes stop it, and systemctl status shows why.
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=all
User=$user
Group=$user
SupplementaryGroups=$serial_group
ExecStartPre=$node_bin $prefix/bin/fieldgate.js validate -c $config_dir/config.yaml
ExecStart=$node_bin $node_flags $prefix/bin/fieldgate.js run -c $config_dir/config.yaml
ExecReload=/bin/kill -HUP \$MAINPID
Restart=always
RestartSec=5
WatchdogSec=30
TimeoutStopSec=30
WorkingDirectory=$data_dir
Environment=NODE_ENV=production $malloc_env
# The outbox holds the site's readings: files 0640, directories 0750.
UMask=0027
# Memory from docs/BENCHMARKS.md: 89-95 MiB RSS at 1 Hz and while draining, 121.6 MiB at Modbus saturation.
# Reclaim pressure starts well above every measured peak; the hard stop only catches a leak (the restart
# keeps every committed sample). Descriptors: buses, the broker, the status page's capped connections and
# SQLite's three files stay far below this; it bounds a descriptor leak.
MemoryHigh=192M
MemoryMax=256M
LimitNOFILE=4096

# Hardening: the daemon writes only its data directory and talks only to serial ports and the network.
# It needs no capability (serial ports through the group above). ProtectClock keeps it from setting the clock;
# reading the sync state (src/clock/probe.ts: a stat, timedatectl over D-Bus, chronyc over its socket) still works.
# Not set: PrivateDevices (it would hide the serial ports), MemoryDenyWriteExecute (V8 compiles code at run time).
CapabilityBoundingSet=
AmbientCapabilities=
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=$data_dir
$state_dir
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
ProtectClock=yes
ProtectKernelLogs=yes
ProtectHostname=yes
ProtectProc=invisible
PrivateMounts=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
DevicePolicy=closed
DeviceAllow=char-ttyUSB rw
DeviceAllow=char-ttyACM rw
DeviceAllow=char-ttyS rw
DeviceAllow=char-ttyAMA rw

[Install]
WantedBy=multi-user.target
UNIT

if ! $staged; then
  chown -R "$user:$user" "$data_dir"
  chown -R "root:$user" "$config_dir"
  chmod 750 "$config_dir"
  step "starting the service"
  systemctl daemon-reload
  systemctl enable --now fieldgate
  echo "done. Logs: journalctl -u fieldgate -f   Reload the config: systemctl reload fieldgate"
else
  echo "staged in $root"
fi
