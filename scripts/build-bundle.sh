#!/usr/bin/env bash
# Builds the offline install bundle: fieldgate-VERSION-linux-ARCH.tar.gz with the app (the esbuild bundle),
# its production dependencies with native modules compiled for ARCH, the Node 20 runtime for ARCH and install.sh.
#   sudo scripts/build-bundle.sh --arch arm64|armhf|x64 [--out DIR]   (default ./dist-bundle/)
# The native modules (better-sqlite3, @serialport/bindings-cpp) are compiled from source inside a Debian 12
# root file system of ARCH (debootstrap, run under qemu-user-static for arm64 and armhf). Scratch space and
# caches: /var/tmp/fieldgate-build (FIELDGATE_BUILD_DIR). Needs root, the Debian mirror and the npm registry;
# installs qemu-user-static, binfmt-support and debootstrap when missing. See docs/install.md.
set -euo pipefail

repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
arch=""
out="$repo/dist-bundle"
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build-bundle.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$arch" ] || { echo "build-bundle.sh: --arch arm64|armhf|x64 is required" >&2; exit 2; }

# shellcheck source=bundle/lib.sh
. "$repo/scripts/bundle/lib.sh"
fg_arch_vars "$arch"
fg_prereqs
command -v npm >/dev/null || fg_die "npm (on the build machine) is needed to resolve the dependencies"

started=$(date +%s)
version="$(node -p 'require(process.argv[1]).version' "$repo/package.json")"
name="fieldgate-$version-linux-$arch"
work="$FG_WORK/build-$arch"
rootfs="$work/rootfs"
stage="$work/$name"
mkdir -p "$work" "$out"
trap 'fg_umount_all; fg_umount "$rootfs"' EXIT

node_pkg="$(fg_node_pkg)"
node_version="$(node -p "require(process.argv[1]).version.replace(/^v/, \"\")" "$node_pkg/package.json")"
fg_log "node-linux-$FG_NODE_ARCH $node_version"

# 1. The app, staged on the build machine: the esbuild bundle, the files it reads at run time, a launcher that
#    runs dist/main.js only, and a package.json whose dependencies are what dist/ imports (no esbuild, no tsx).
fg_log "staging the app in $stage"
rm -rf "$stage"; mkdir -p "$stage/bin" "$stage/scripts" "$stage/src/status" "$stage/docs"
(cd "$repo" && node scripts/build.mjs --outdir="$stage/dist")
cp -r "$repo/config" "$stage/config"
cp -r "$repo/src/status/assets" "$stage/src/status/assets"
cp "$repo/scripts/install-service.sh" "$stage/scripts/"
cp "$repo/scripts/bundle/launcher.js" "$stage/bin/fieldgate.js"
cp "$repo/scripts/bundle/install.sh" "$stage/install.sh"
cp "$repo/README.md" "$stage/"
[ -f "$repo/docs/install.md" ] && cp "$repo/docs/install.md" "$stage/docs/"
[ -f "$repo/LICENSE" ] && cp "$repo/LICENSE" "$stage/"
chmod 755 "$stage/bin/fieldgate.js" "$stage/install.sh" "$stage/scripts/install-service.sh"
node "$repo/scripts/bundle/runtime-package.js" "$repo/package.json" "$stage/dist" > "$stage/package.json"
cp "$repo/package-lock.json" "$stage/package-lock.json"
# The lock file follows the trimmed package.json; versions stay the ones the repository's lock pins.
(cd "$stage" && npm install --package-lock-only --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

# The compiled production node_modules are cached by the lock file, node version and arch: a rebuild with the
# same dependencies skips steps 2 and 3.
modules_key="$( (cat "$stage/package-lock.json"; echo "$node_version $arch") | sha256sum | cut -c1-16)"
modules_tar="$FG_WORK/cache/modules-$arch-$modules_key.tar"
build_tar="$FG_WORK/cache/$FG_SUITE-$FG_DEB_ARCH-build.tar"
npm_seconds=cached
if [ -s "$modules_tar" ]; then
  fg_log "production node_modules from the cache ($modules_tar)"
  rm -rf "$stage/node_modules"
  tar -C "$stage" -xf "$modules_tar"
else
  # 2. A Debian 12 root file system of ARCH with a compiler: the pristine base plus g++, make and python3
  #    (node-gyp), cached as a tarball of its own.
  if [ ! -s "$build_tar" ]; then
    fg_log "preparing the $FG_DEB_ARCH build root (g++, make, python3)"
    fg_fresh_rootfs "$rootfs"
    fg_mount "$rootfs"
    nice -n 10 chroot "$rootfs" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends g++ make python3 binutils >/dev/null && apt-get clean'
    fg_umount_all
    tar -C "$rootfs" -cf "$build_tar.tmp" . && mv "$build_tar.tmp" "$build_tar"
  else
    fg_umount "$rootfs"
    rm -rf "$rootfs"; mkdir -p "$rootfs"
    tar -C "$rootfs" -xf "$build_tar"
  fi

  # 3. npm ci --omit=dev inside it, with ARCH's node, its headers (npm_config_nodedir) and the build machine's
  #    npm and CA bundle. Native modules from source: no prebuilt binary is fetched.
  fg_log "npm ci --omit=dev in the $FG_DEB_ARCH root (native modules from source${FG_QEMU:+; slow under emulation})"
  mkdir -p "$rootfs/build"
  cp -r "$node_pkg" "$rootfs/build/node"
  cp -r "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$rootfs/build/npm"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/build/ca.crt"
  rm -rf "$rootfs/build/app"; cp -r "$stage" "$rootfs/build/app"
  fg_mount "$rootfs"
  npm_started=$(date +%s)
  nice -n 10 chroot "$rootfs" /usr/bin/env -i PATH=/build/node/bin:/usr/bin:/bin HOME=/build/home \
    npm_config_nodedir=/build/node npm_config_build_from_source=true npm_config_cafile=/build/ca.crt \
    NODE_EXTRA_CA_CERTS=/build/ca.crt npm_config_update_notifier=false JOBS=2 \
    ${https_proxy:+https_proxy="$https_proxy"} ${http_proxy:+http_proxy="$http_proxy"} \
    /bin/sh -c 'cd /build/app && node /build/npm/bin/npm-cli.js ci --omit=dev --no-audit --no-fund --loglevel=warn'
  npm_seconds=$(( $(date +%s) - npm_started ))
  # Only the compiled .node files of the native modules are kept; symbols stripped.
  chroot "$rootfs" /bin/sh -c 'find /build/app/node_modules -name "*.node" -path "*/build/Release/*" -exec strip --strip-unneeded {} +'
  # The modules load and work on ARCH before they are packed.
  chroot "$rootfs" /usr/bin/env -i PATH=/build/node/bin:/usr/bin:/bin /bin/sh -c 'cd /build/app && node -e "
    const db = new (require(\"better-sqlite3\"))(\":memory:\");
    const v = db.prepare(\"select sqlite_version() as v\").get().v;
    require(\"@serialport/bindings-cpp\").autoDetect();
    console.log(\"native modules load: sqlite \" + v + \", serialport binding ok\");"'
  fg_umount_all
  rm -rf "$stage/node_modules"
  cp -a "$rootfs/build/app/node_modules" "$stage/node_modules"
  tar -C "$stage" -cf "$modules_tar.tmp" node_modules && mv "$modules_tar.tmp" "$modules_tar"
fi
"$repo/scripts/bundle/prune.sh" "$stage/node_modules"

# 4. The runtime: node's binary (stripped) and its licence; headers and docs are build-time only.
mkdir -p "$stage/node/bin"
cp "$node_pkg/LICENSE" "$stage/node/LICENSE"
node_strip="$FG_WORK/cache/node-linux-$FG_NODE_ARCH-$node_version.stripped"
if [ ! -s "$node_strip" ]; then
  if [ -n "$FG_QEMU" ]; then
    fg_umount "$rootfs"; rm -rf "$rootfs"; mkdir -p "$rootfs"; tar -C "$rootfs" -xf "$build_tar"
    cp "$node_pkg/bin/node" "$rootfs/node.strip"
    chroot "$rootfs" strip --strip-all /node.strip
    mv "$rootfs/node.strip" "$node_strip"
  else
    cp "$node_pkg/bin/node" "$node_strip"; strip --strip-all "$node_strip"
  fi
fi
cp "$node_strip" "$stage/node/bin/node"
# Node's armv7l build links libatomic.so.1, which a bare Debian armhf system lacks (Raspberry Pi OS has it):
# shipped in node/lib, and node/bin/node becomes a wrapper that puts it on the library path.
if [ "$arch" = armhf ]; then
  tmp="$(mktemp -d)"
  tar -C "$tmp" -xf "$build_tar" --wildcards './usr/lib/arm-linux-gnueabihf/libatomic.so.1*'
  mkdir -p "$stage/node/lib"
  cp -L "$tmp/usr/lib/arm-linux-gnueabihf/libatomic.so.1" "$stage/node/lib/libatomic.so.1"
  rm -rf "$tmp"
  mv "$stage/node/bin/node" "$stage/node/bin/node.bin"
  printf '%s\n' '#!/bin/sh' 'd="$(dirname "$(readlink -f "$0")")"' \
    'LD_LIBRARY_PATH="$d/../lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/node.bin" "$@"' > "$stage/node/bin/node"
  chmod 755 "$stage/node/bin/node"
fi

cat > "$stage/BUNDLE" <<INFO
fieldgate $version for linux-$arch (Debian $FG_SUITE $FG_DEB_ARCH and compatible, glibc 2.36 or later)
node $node_version (npm package node-linux-$FG_NODE_ARCH@$node_version)
built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$repo" describe --always --dirty=' with uncommitted changes' 2>/dev/null || echo unknown)
native modules compiled from source in a Debian $FG_SUITE $FG_DEB_ARCH root: $(cd "$stage/node_modules" && find . -name '*.node' | sed 's#^\./##' | tr '\n' ' ')
INFO

tarball="$out/$name.tar.gz"
tar -C "$work" --owner=0 --group=0 -czf "$tarball.tmp" "$name" && mv "$tarball.tmp" "$tarball"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
rm -rf "$rootfs"
size=$(stat -c %s "$tarball")
fg_log "$tarball: $(( size / 1024 / 1024 )) MiB ($size bytes), unpacked $(du -sm "$stage" | cut -f1) MiB; node $node_version; npm ci $([ "$npm_seconds" = cached ] && echo "from the cache" || echo "${npm_seconds}s"); total $(( $(date +%s) - started ))s"
