#!/usr/bin/env bash
# Installs this offline bundle as the fieldgate service: no network, no npm, no compiler.
#   sudo ./install.sh [--prefix /opt/fieldgate] [--config-dir /etc/fieldgate] [--data-dir /var/lib/fieldgate]
#                     [--user fieldgate]
#   ./install.sh --check [same options]   checks this machine and the bundle and stages the install into a
#                                         temporary directory; changes nothing, needs neither root nor systemd
#   ./install.sh --root DIR [options]     the checks, then only the files, staged into DIR (install-service.sh
#                                         --root): no user, no systemctl; for packaging and scripts/smoke-bundle.sh
# The install itself is scripts/install-service.sh (the same as from a checkout), told to use the node in
# node/bin and the node_modules shipped here. An existing /etc/fieldgate/config.yaml is kept.
set -euo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
prefix=/opt/fieldgate
check=false
root=""
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=true; shift ;;
    --root) root="$2"; shift 2 ;;
    --prefix) prefix="$2"; pass+=("$1" "$2"); shift 2 ;;
    --config-dir|--data-dir|--user) pass+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

node="$here/node/bin/node"
failed=0
ok() { printf '  ok    %s\n' "$*"; }
warn() { printf '  warn  %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; failed=1; }

echo "checking $(head -n 1 "$here/BUNDLE")"
# The bundled node runs here: the right CPU architecture (a 32-bit armhf bundle also runs on a 64-bit kernel
# with a 32-bit system, as Raspberry Pi OS ships it) and a new enough C library.
if out="$("$node" -p 'process.version + " " + process.arch' 2>&1)"; then
  ok "node $out runs on this machine ($(uname -m), $(getconf GNU_LIBC_VERSION 2>/dev/null || echo 'libc unknown'))"
else
  bad "the bundled node does not run here: $out (wrong architecture or C library; see docs/install.md)"
fi
# The native modules load and work: SQLite for the outbox, the serial port binding.
if out="$(cd "$here" && "$node" -e '
  const db = new (require("better-sqlite3"))(":memory:");
  db.exec("create table t (x); insert into t values (1)");
  const v = db.prepare("select sqlite_version() as v").get().v;
  require("@serialport/bindings-cpp").autoDetect();
  console.log("sqlite " + v + " and the serial port binding load");' 2>&1)"; then
  ok "$out"
else
  bad "a native module does not load: $(printf '%s' "$out" | grep -m1 -E 'Error|error' || printf '%s' "$out" | head -n 1)"
fi
# The app starts and the shipped configurations validate.
for f in "$here"/config/*.yaml; do
  if out="$("$node" "$here/bin/fieldgate.js" validate -c "$f" 2>&1)"; then ok "$out"; else bad "fieldgate validate -c $f: $out"; fi
done
# Room for the app under the prefix (its nearest existing parent).
parent="$prefix"
while [ ! -d "$parent" ]; do parent="$(dirname "$parent")"; done
need_kib=$(( $(du -sk "$here" | cut -f1) * 12 / 10 ))
free_kib=$(df -Pk "$parent" | awk 'NR == 2 { print $4 }')
if [ "$free_kib" -ge "$need_kib" ]; then ok "$(( free_kib / 1024 )) MiB free on $parent ($(( need_kib / 1024 )) MiB needed)"; else bad "only $(( free_kib / 1024 )) MiB free on $parent, $(( need_kib / 1024 )) MiB needed"; fi
if [ -d /run/systemd/system ]; then
  ok "systemd is running"
elif $check || [ -n "$root" ]; then
  warn "systemd is not running here (the install itself needs it; --root does not)"
else
  bad "systemd is not running: the service cannot be installed"
fi
getent group dialout >/dev/null 2>&1 && ok "group dialout exists (serial ports)" || warn "no dialout group: install-service.sh uses uucp"

if $check; then
  # The install itself, staged into a temporary root: the files, the unit and the command link it would write.
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  if out="$("$here/scripts/install-service.sh" --prebuilt --node "$prefix/node/bin/node" "${pass[@]}" --root "$stage" 2>&1)"; then
    unit="$stage/etc/systemd/system/fieldgate.service"
    if grep -q "^ExecStart=$prefix/node/bin/node .*$prefix/bin/fieldgate.js run" "$unit" && [ -x "$stage$prefix/node/bin/node" ] \
      && [ -f "$stage$prefix/node_modules/better-sqlite3/package.json" ] && [ -L "$stage/usr/local/bin/fieldgate" ]; then
      ok "install staged: $prefix with node and node_modules, fieldgate.service running $prefix/node/bin/node, /usr/local/bin/fieldgate"
    else
      bad "the staged install is incomplete: $(grep '^ExecStart=' "$unit" 2>/dev/null || echo "no unit")"
    fi
  else
    bad "install-service.sh --root failed: $out"
  fi
  [ "$failed" -eq 0 ] && echo "check passed: sudo ./install.sh installs the service" || echo "check failed"
  exit "$failed"
fi

[ "$failed" -eq 0 ] || { echo "install.sh: a check failed, nothing installed" >&2; exit 1; }
if [ -n "$root" ]; then
  exec "$here/scripts/install-service.sh" --prebuilt --node "$prefix/node/bin/node" "${pass[@]}" --root "$root"
fi
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo ./install.sh), or ./install.sh --check" >&2; exit 1; }
was_active=false
systemctl is-active --quiet fieldgate 2>/dev/null && was_active=true
"$here/scripts/install-service.sh" --prebuilt --node "$prefix/node/bin/node" "${pass[@]}"
# An upgrade: the running service picks up the new files.
if $was_active; then systemctl restart fieldgate; echo "restarted fieldgate with the new version"; fi
