#!/usr/bin/env bash
# The container image of the Dockerfile, built and run without a Docker engine
# or a registry: Debian's buildah (vfs storage, chroot isolation, as root).
#
#   scripts/image.sh build   the image from the host's release binaries
#   scripts/image.sh test    build, then run it and check it (make test-image)
#   scripts/image.sh base    only the local base image
#
# build:
#   1. The base image: `debootstrap --variant=minbase bookworm` from Debian's
#      mirror (docs, man pages, locales and apt caches left out as in
#      debian:*-slim),
#      kept as a tarball in $IMAGE_CACHE and imported once into buildah's
#      storage (also in $IMAGE_CACHE), tagged $BASE_IMAGE.
#   2. The prebuilt folder: serve and analytics from $BIN_DIR, stripped, with
#      libxgboost and its libgomp beside them and the rpaths the Dockerfile's
#      build stage sets ($ORIGIN/lib; $ORIGIN for libxgboost).
#   3. `buildah bud` of the Dockerfile with BINARIES=prebuilt and
#      RUNTIME_BASE=$BASE_IMAGE: the runtime stage is the one Docker users
#      build, including its apt-get against Debian's mirror.
# test: in a private network namespace (port 8080 is the image's own), with a
#   registry and a data folder generated and trained by $BIN_DIR/analytics and
#   mounted read-only, checks that serve runs as uid 10001, that ldd finds
#   every library (libxgboost through the rpath), that /health, /ready and
#   /predict answer (keys on: 401 without one), and that the image's
#   HEALTHCHECK command succeeds while serve runs and fails once it stopped.
#
# Env:
#   BIN_DIR      the release binaries (default $CARGO_TARGET_DIR/release, else
#                $HOME/.cache/sales-analytics/target/release)
#   IMAGE        the image's name (default localhost/sales-analytics:latest)
#   IMAGE_CACHE  base tarball, buildah storage, build context
#                (default $HOME/.cache/sales-analytics/image)
#   DEBIAN_MIRROR  default http://deb.debian.org/debian
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-build}"
BIN_DIR="${BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/sales-analytics/target}/release}"
IMAGE="${IMAGE:-localhost/sales-analytics:latest}"
IMAGE_CACHE="${IMAGE_CACHE:-$HOME/.cache/sales-analytics/image}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump BASE_RECIPE when make_base changes what goes into the base.
BASE_RECIPE=2
BASE_IMAGE=localhost/sales-analytics-base:bookworm-minbase-$BASE_RECIPE
BASE_TAR="$IMAGE_CACHE/bookworm-minbase-$BASE_RECIPE.tar"
XGB_DIR=third_party/xgboost-cpu

export BUILDAH_ISOLATION=chroot
bh() { buildah --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run" --storage-driver vfs "$@"; }
say() { echo "image: $*" >&2; }
die() { echo "image: FAILED: $*" >&2; exit 1; }

# Whether buildah can run here at all (make test-image skips otherwise).
usable() {
  command -v buildah >/dev/null 2>&1 || { echo "buildah is not installed (apt-get install buildah)"; return 1; }
  [ "$(id -u)" = 0 ] || { echo "buildah with chroot isolation and vfs storage needs root here"; return 1; }
  unshare --mount --net true 2>/dev/null || { echo "no permission to create mount and network namespaces"; return 1; }
}

make_base() {
  mkdir -p "$IMAGE_CACHE"
  if bh inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then return; fi
  if [ ! -s "$BASE_TAR" ]; then
    say "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (once; cached in $BASE_TAR)"
    local tmp; tmp=$(mktemp -d "$IMAGE_CACHE/rootfs.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    debootstrap --variant=minbase bookworm "$tmp/root" "$DEBIAN_MIRROR" > "$tmp/debootstrap.log" 2>&1 \
      || { tail -20 "$tmp/debootstrap.log" >&2; die "debootstrap failed"; }
    local r="$tmp/root"
    cat > "$r/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main
EOF
    # As debian:*-slim: no documentation, man pages or translations installed.
    cat > "$r/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    # As debian:*-slim: apt keeps neither downloaded packages nor its binary
    # caches (about 80 MB after an apt-get update).
    cat > "$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin \
      "$r"/var/cache/apt/archives/*.deb "$r"/var/log/* "$r"/etc/hostname "$r"/etc/resolv.conf
    find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
    tar -C "$r" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
      -cf "$BASE_TAR.part" .
    mv "$BASE_TAR.part" "$BASE_TAR"
    rm -rf "$tmp"; trap - EXIT
  fi
  # Bases of earlier recipes go.
  find "$IMAGE_CACHE" -maxdepth 1 -name 'bookworm-minbase*.tar' ! -name "${BASE_TAR##*/}" -delete
  local old
  for old in $(bh images --format '{{.Name}}:{{.Tag}}'); do
    case "$old" in
      "$BASE_IMAGE") ;;
      localhost/sales-analytics-base:*) bh rmi "$old" >/dev/null 2>&1 || true ;;
    esac
  done
  say "importing $BASE_TAR as $BASE_IMAGE"
  local ctr; ctr=$(bh from scratch)
  bh add "$ctr" "$BASE_TAR" / >/dev/null
  bh config --os linux --arch amd64 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash "$ctr"
  bh commit --rm --quiet "$ctr" "$BASE_IMAGE" >/dev/null
}

# The build context: prebuilt/ laid out as the Dockerfile build stage's /out/.
prepare_prebuilt() {
  local ctx="$IMAGE_CACHE/context" out
  out="$ctx/prebuilt"
  for f in "$BIN_DIR/serve" "$BIN_DIR/analytics" "$XGB_DIR/xgboost/lib/libxgboost.so"; do
    [ -f "$f" ] || die "$f not found: build the release binaries first (make setup) and fetch XGBoost (scripts/fetch-xgboost.sh)"
  done
  command -v patchelf >/dev/null 2>&1 || die "patchelf not found (apt-get install patchelf)"
  rm -rf "$out"; mkdir -p "$out/lib"
  strip --strip-all -o "$out/serve" "$BIN_DIR/serve"
  strip --strip-all -o "$out/analytics" "$BIN_DIR/analytics"
  cp "$XGB_DIR/xgboost/lib/libxgboost.so" "$out/lib/libxgboost.so.3"
  cp "$XGB_DIR"/xgboost_cpu.libs/libgomp-*.so* "$out/lib/"
  # Relocatable, as in the build stage: the libraries are found beside the binaries.
  # shellcheck disable=SC2016
  patchelf --set-rpath '$ORIGIN/lib' "$out/serve" "$out/analytics"
  # shellcheck disable=SC2016
  patchelf --set-rpath '$ORIGIN' "$out/lib/libxgboost.so.3"
  # Same bytes, same mtimes: buildah's layer cache stays valid across runs.
  touch -d @0 "$out" "$out/lib" "$out"/* "$out"/lib/*
  echo "$ctx"
}

build() {
  make_base
  local ctx; ctx=$(prepare_prebuilt)
  say "buildah bud (BINARIES=prebuilt, RUNTIME_BASE=$BASE_IMAGE) -> $IMAGE"
  local start old new; start=$(date +%s)
  old=$(bh images --quiet --no-trunc "$IMAGE" 2>/dev/null | head -1 || true)
  # --format docker keeps the HEALTHCHECK (the OCI format has no field for it).
  # No --layers: with vfs every cached step is a full copy of the file system,
  # and the steps are quick (the base image is what is worth keeping).
  bh bud --format docker --pull=never \
    --build-arg BINARIES=prebuilt --build-arg RUNTIME_BASE="$BASE_IMAGE" \
    --target runtime -f "$PWD/Dockerfile" -t "$IMAGE" "$ctx" > "$IMAGE_CACHE/build.log" 2>&1 \
    || { tail -40 "$IMAGE_CACHE/build.log" >&2; die "buildah bud (full log: $IMAGE_CACHE/build.log)"; }
  grep -E '^\[[0-9]+/[0-9]+\] STEP' "$IMAGE_CACHE/build.log" | cut -c1-150 >&2
  new=$(bh images --quiet --no-trunc "$IMAGE" | head -1)
  # buildah 1.28 leaves the stages' working containers behind; drop them and
  # the previous build so the storage holds the base and one image.
  bh containers --format '{{.ContainerName}}' | grep -e '-working-container' | xargs -r buildah \
    --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run" --storage-driver vfs rm >/dev/null || true
  if [ -n "$old" ] && [ "$old" != "$new" ]; then bh rmi "$old" >/dev/null 2>&1 || true; fi
  bh rmi --prune >/dev/null 2>&1 || true
  say "built $IMAGE in $(( $(date +%s) - start )) s; size $(bh images --format '{{.Size}}' "$IMAGE" | head -1)"
}

case "$cmd" in
  base) usable >&2 || exit 1; make_base ;;
  build) usable >&2 || exit 1; build ;;
  test)
    if ! why=$(usable); then
      echo "image: SKIPPED, buildah cannot run here: $why" >&2
      exit 0
    fi
    build
    # The checks run in a private network namespace: the image's port 8080
    # cannot collide with anything on the host.
    exec unshare --net -- "$PWD/tests/image/run.sh" "$IMAGE" "$BIN_DIR"
    ;;
  *) echo "usage: scripts/image.sh build|test|base" >&2; exit 2 ;;
esac
