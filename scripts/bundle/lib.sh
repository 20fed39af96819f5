# Shared by build-bundle.sh and smoke-bundle.sh: emulation prerequisites, cached Debian root file systems,
# and chroot mounts that are always undone. Sourced, not run.

FG_WORK="${FIELDGATE_BUILD_DIR:-/var/tmp/fieldgate-build}"
FG_SUITE=bookworm
FG_MIRROR="${FIELDGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

fg_log() { printf '==> %s\n' "$*" >&2; }
fg_die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# Debian architecture -> Node's npm package suffix, qemu's binfmt name, uname -m.
fg_arch_vars() {
  case "$1" in
    arm64) FG_NODE_ARCH=arm64;  FG_QEMU=aarch64; FG_UNAME=aarch64 ;;
    armhf) FG_NODE_ARCH=armv7l; FG_QEMU=arm;     FG_UNAME=armv7l ;;
    x64)   FG_NODE_ARCH=x64;    FG_QEMU="";      FG_UNAME=x86_64 ;;
    *) fg_die "unknown arch $1 (arm64, armhf or x64)" ;;
  esac
  FG_DEB_ARCH="$1"
  [ "$1" = x64 ] && FG_DEB_ARCH=amd64
  return 0
}

# qemu-user-static, binfmt-support and debootstrap, binfmt_misc mounted and the arch's handler enabled.
fg_prereqs() {
  [ "$(id -u)" -eq 0 ] || fg_die "run as root (debootstrap and chroot need it)"
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ -n "$FG_QEMU" ]; then
    command -v "qemu-$FG_QEMU-static" >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    fg_log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support debootstrap
  fi
  [ -n "$FG_QEMU" ] || return 0
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$FG_QEMU" ]; then
    update-binfmts --enable "qemu-$FG_QEMU" || true
  fi
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$FG_QEMU" ] || fg_die "binfmt handler qemu-$FG_QEMU is not registered"
}

# A pristine minbase root file system of the arch, debootstrapped once and cached as a tarball.
fg_base_tarball() {
  local tarball="$FG_WORK/cache/$FG_SUITE-$FG_DEB_ARCH-minbase.tar"
  if [ ! -s "$tarball" ]; then
    local dir="$FG_WORK/cache/debootstrap-$FG_DEB_ARCH"
    rm -rf "$dir"; mkdir -p "$dir"
    fg_log "debootstrap $FG_SUITE $FG_DEB_ARCH (minbase) into $dir"
    nice -n 10 debootstrap --variant=minbase --arch="$FG_DEB_ARCH" "$FG_SUITE" "$dir" "$FG_MIRROR" >&2
    rm -rf "$dir/var/cache/apt/archives/"*.deb
    tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  printf '%s\n' "$tarball"
}

# A fresh copy of the base in DIR.
fg_fresh_rootfs() {
  local dir="$1" tarball
  tarball="$(fg_base_tarball)"
  fg_umount "$dir"
  rm -rf "$dir"; mkdir -p "$dir"
  tar -C "$dir" -xf "$tarball"
}

FG_MOUNTED=()
fg_mount() {
  local dir="$1"
  mount -t proc proc "$dir/proc"; FG_MOUNTED+=("$dir/proc")
  mount --bind /dev "$dir/dev"; FG_MOUNTED+=("$dir/dev")
  mount -t tmpfs tmpfs "$dir/dev/shm"; FG_MOUNTED+=("$dir/dev/shm")
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
}
# Unmounts whatever is mounted under DIR, deepest first.
fg_umount() {
  local dir="$1" m
  [ -d "$dir" ] || return 0
  for m in $(awk -v d="$(readlink -f "$dir")/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}
fg_umount_all() {
  local i
  for ((i = ${#FG_MOUNTED[@]} - 1; i >= 0; i--)); do
    mountpoint -q "${FG_MOUNTED[$i]}" && { umount "${FG_MOUNTED[$i]}" 2>/dev/null || umount -l "${FG_MOUNTED[$i]}"; }
  done
  FG_MOUNTED=()
}

# Fetches node-linux-ARCH@20 from the npm registry into the cache; prints its directory.
fg_node_pkg() {
  local dir="$FG_WORK/cache/node-linux-$FG_NODE_ARCH"
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    fg_log "npm pack node-linux-$FG_NODE_ARCH@20"
    (cd "$dir" && npm pack --silent "node-linux-$FG_NODE_ARCH@20" >/dev/null && tar -xzf node-linux-*.tgz && rm -f node-linux-*.tgz)
  fi
  printf '%s\n' "$dir/package"
}
