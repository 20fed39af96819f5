#!/usr/bin/env bash
# Proves an offline bundle on a machine with nothing else installed: a fresh Debian 12 root file system of
# ARCH (the cached pristine debootstrap, emulated with qemu-user-static for arm64 and armhf), no network use.
#   sudo scripts/smoke-bundle.sh ARCH [--bundle FILE] [--demo-seconds 30]
# Runs install.sh --check, installs into the root without systemd (install.sh --root /), then fieldgate
# validate on both shipped configurations, the demo for 30 s with /healthz and the MQTT telemetry checked,
# and fieldgate buffer stats on the demo's outbox. Prints start-up times and memory. Not part of npm test
# (minutes under emulation); see docs/install.md.
set -euo pipefail

repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
arch="${1:-}"
[ -n "$arch" ] && shift || { echo "smoke-bundle.sh: ARCH (arm64, armhf or x64) is required" >&2; exit 2; }
bundle=""
demo_seconds=30
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="$2"; shift 2 ;;
    --demo-seconds) demo_seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "smoke-bundle.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# shellcheck source=bundle/lib.sh
. "$repo/scripts/bundle/lib.sh"
fg_arch_vars "$arch"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$repo/package.json" | head -n 1)"
name="fieldgate-$version-linux-$arch"
[ -n "$bundle" ] || bundle="$repo/dist-bundle/$name.tar.gz"
[ -s "$bundle" ] || fg_die "no bundle $bundle (scripts/build-bundle.sh --arch $arch)"
fg_prereqs

rootfs="$FG_WORK/smoke-$arch/rootfs"
demo_pid=""
tail_pid=""
cleanup() {
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null || true
  sleep 1
  fg_umount_all
  fg_umount "$rootfs"
}
trap cleanup EXIT
failures=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
ms() { date +%s%3N; }
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"; }
# For a background job: the job's pid becomes node's (chroot, env, sh and the launcher all exec).
in_root_exec() { exec chroot "$rootfs" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"; }

fg_log "a fresh $FG_DEB_ARCH root in $rootfs (pristine debootstrap, nothing else installed)"
fg_fresh_rootfs "$rootfs"
for tool in node npm gcc g++ python3; do
  [ -z "$(chroot "$rootfs" /bin/sh -c "command -v $tool" || true)" ] || fg_die "the fresh root has $tool: not a clean machine"
done
fg_mount "$rootfs"
rm -f "$rootfs/etc/resolv.conf"   # no name resolution: the install must not need the network
mkdir -p "$rootfs/media/usb"
tar -C "$rootfs/media/usb" -xzf "$bundle"
b="/media/usb/$name"
echo "bundle   $(basename "$bundle") ($(( $(stat -c %s "$bundle") / 1024 / 1024 )) MiB)"
sed 's/^/         /' "$rootfs$b/BUNDLE"

# 1. The installer's checks, then the install itself without systemd (a chroot has no init).
if out="$(in_root "$b/install.sh" --check 2>&1)"; then pass "install.sh --check"; else fail "install.sh --check"; fi
printf '%s\n' "$out" | sed 's/^/      /'
if out="$(in_root "$b/install.sh" --root / 2>&1)"; then pass "install.sh --root / (files, unit and command link; no systemd)"; else fail "install.sh --root /"; printf '%s\n' "$out" | sed 's/^/      /'; fi
grep -q '^ExecStart=/opt/fieldgate/node/bin/node ' "$rootfs/etc/systemd/system/fieldgate.service" \
  && pass "fieldgate.service runs the bundled node" || fail "fieldgate.service does not run /opt/fieldgate/node/bin/node"

# 2. The command on the PATH: start-up time of the CLI, then both shipped configurations.
t0=$(ms); out="$(in_root fieldgate --version 2>&1)" && t1=$(ms) || t1=""
if [ -n "$t1" ]; then pass "fieldgate --version: $out"; else fail "fieldgate --version: $out"; fi
startup_version=$(( ${t1:-$t0} - t0 ))
for f in village-water tunnel; do
  t0=$(ms)
  if out="$(in_root fieldgate validate -c "/opt/fieldgate/config/$f.yaml" 2>&1)"; then pass "$out ($(( $(ms) - t0 )) ms)"; else fail "validate $f: $out"; fi
done
if out="$(in_root fieldgate validate -c /etc/fieldgate/config.yaml 2>&1)"; then pass "$out (the installed example)"; else fail "validate /etc/fieldgate/config.yaml: $out"; fi

# The memory of an empty node process here: under emulation its VmRSS includes qemu's own memory and its
# translated-code cache, so the demo's RSS is read against it.
in_root_exec /opt/fieldgate/node/bin/node -e 'setTimeout(() => {}, 4000)' &
empty_pid=$!
sleep 3
empty_rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$empty_pid/status" 2>/dev/null || echo "?")
wait "$empty_pid" || true
echo "memory   an empty node process: VmRSS $empty_rss MiB"

# 3. The demo for $demo_seconds s: simulators, embedded broker, gateway, status page. Ports picked well away
#    from the defaults (the chroot shares the host's network); taken ones are replaced and the banner says so.
mqtt_port=$(( 21000 + RANDOM % 2000 )); status_port=$(( 23000 + RANDOM % 2000 ))
log="$FG_WORK/smoke-$arch/demo.log"
mkdir -p "$rootfs/var/lib/fieldgate/demo"
t0=$(ms)
in_root_exec /bin/sh -c "cd /var/lib/fieldgate && exec fieldgate demo --data-dir /var/lib/fieldgate/demo --mqtt-port $mqtt_port --status 127.0.0.1:$status_port" > "$log" 2>&1 &
demo_pid=$!
banner_ms=""; health_ms=""; url=""; broker=""
for _ in $(seq 1 1200); do
  if [ -z "$banner_ms" ] && grep -q 'fieldgate demo is running' "$log"; then
    banner_ms=$(( $(ms) - t0 ))
    url="$(sed -n 's#^  status page  \(http://[^/ ]*\)/.*#\1#p' "$log" | head -n 1)"
    broker="$(sed -n 's#^  MQTT broker  \(mqtt://[^ ]*\).*#\1#p' "$log" | head -n 1)"
  fi
  if [ -n "$url" ] && curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then health_ms=$(( $(ms) - t0 )); break; fi
  kill -0 "$demo_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -n "$health_ms" ]; then
  pass "demo up: banner after $banner_ms ms, /healthz 200 after $health_ms ms ($url, broker $broker)"
else
  fail "demo did not become healthy (banner ${banner_ms:-none})"; tail -n 20 "$log" | sed 's/^/      /'
fi

samples=0
if [ -n "$broker" ]; then
  tail_out="$FG_WORK/smoke-$arch/tail.jsonl"
  in_root fieldgate tail "$broker" --json --duration "$(( demo_seconds > 5 ? demo_seconds - 5 : demo_seconds ))" > "$tail_out" 2>/dev/null &
  tail_pid=$!
  # RSS of the demo process (simulators, broker and gateway in one node) sampled each second. chroot, env, sh
  # and the launcher all exec, so the background job is the node process itself.
  node_pid=$demo_pid
  peak_kib=0
  for _ in $(seq 1 "$demo_seconds"); do
    sleep 1
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$node_pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak_kib" ] && peak_kib=$rss
  done
  wait "$tail_pid" 2>/dev/null || true
  tail_pid=""
  samples=$(grep -c '"point"' "$tail_out" || true)
  points=$(grep -o '"point":"[^"]*"' "$tail_out" | sort -u | wc -l)
  [ "$samples" -gt 0 ] && pass "telemetry: $samples samples from $points points over MQTT in $(( demo_seconds - 5 )) s" || { fail "telemetry: no samples on $broker"; head -n 5 "$tail_out" | sed 's/^/      /'; }
  if health="$(curl -fsS "$url/healthz" 2>&1)"; then pass "/healthz after ${demo_seconds} s: $(printf '%s' "$health" | head -c 200)"; else fail "/healthz after ${demo_seconds} s: $health"; fi
  # The status page and its chart library (uPlot, served from node_modules: pruning must have left it).
  page_ok=true
  for p in / /assets/status.js /assets/chart.js /assets/uPlot.iife.min.js /assets/uPlot.min.css; do
    code="$(curl -sS -o /dev/null -w '%{http_code}' "$url$p" 2>/dev/null || true)"
    [ "$code" = 200 ] || { page_ok=false; fail "status page $p: HTTP ${code:-none}"; }
  done
  $page_ok && pass "status page: / and its assets (status.js, chart.js, uPlot) 200"
  metrics="$(curl -fsS "$url/metrics" 2>/dev/null || true)"
  heap_used=$(printf '%s\n' "$metrics" | awk '/^nodejs_heap_size_used_bytes / { printf "%.1f", $2 / 1048576 }')
  rss_now=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$node_pid/status" 2>/dev/null || echo "?")
  hwm=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$node_pid/status" 2>/dev/null || echo "?")
  echo "memory   demo process RSS ${rss_now} MiB at the end, peak ${hwm} MiB (sampled max $(( peak_kib / 1024 )) MiB); V8 heap used ${heap_used:-?} MiB"
fi

# 4. A clean stop (SIGINT, as Ctrl-C), then the outbox it left.
t0=$(ms)
kill -INT "$demo_pid" 2>/dev/null || true
stopped=""
for _ in $(seq 1 600); do kill -0 "$demo_pid" 2>/dev/null || { stopped=$(( $(ms) - t0 )); break; }; sleep 0.1; done
wait "$demo_pid" 2>/dev/null && demo_rc=0 || demo_rc=$?
demo_pid=""
if [ -n "$stopped" ] && [ "$demo_rc" -eq 0 ]; then pass "demo stopped cleanly on SIGINT in $stopped ms (exit 0)"; else fail "demo stop: ${stopped:-still running after 60 s}, exit $demo_rc"; tail -n 10 "$log" | sed 's/^/      /'; fi
sed 's#dataDir: .*#dataDir: /var/lib/fieldgate/demo#' "$rootfs/opt/fieldgate/config/village-water.yaml" > "$rootfs/tmp/demo-outbox.yaml"
if out="$(in_root fieldgate buffer stats -c /tmp/demo-outbox.yaml 2>&1)"; then pass "fieldgate buffer stats"; else fail "fieldgate buffer stats"; fi
printf '%s\n' "$out" | sed 's/^/      /'

echo "figures  arch $arch ($( [ -n "$FG_QEMU" ] && echo "emulated: qemu-$FG_QEMU-static on $(uname -m)" || echo native)); fieldgate --version ${startup_version} ms; demo banner ${banner_ms:-?} ms, healthy ${health_ms:-?} ms; RSS peak ${hwm:-?} MiB (empty node ${empty_rss} MiB); heap ${heap_used:-?} MiB; ${samples} samples"
if [ "$failures" -eq 0 ]; then echo "smoke $arch: all checks passed"; else echo "smoke $arch: $failures check(s) failed"; exit 1; fi
