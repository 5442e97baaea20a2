#!/usr/bin/env bash
# Check, in the first seconds and before any long build, what the Makefile's
# targets need from the system, and install what is missing when that can be
# done here (root with apt-get). Otherwise stop with one message that says
# what to install and how.
#
# Usage: scripts/prereqs.sh GROUP...   (build, python, node, browser, image, lambda)
#   build    cargo, a C toolchain with libstdc++, libclang (bindgen, for the
#            XGBoost bindings), python3 + pip (the XGBoost wheel from PyPI)
#   python   python3 with venv and pip (the virtual environments of the tests
#            and the notebooks)
#   node     node and npm (the browser tests' driver, playwright-core)
#   browser  Debian's chromium (the browser tests; never downloaded by npm)
#   image    buildah, debootstrap, patchelf, jq (the container image built and
#            run without a Docker engine: scripts/image.sh)
#   lambda   patchelf, zip, strip (the AWS Lambda package)
#
# Env:
#   PREREQS_NO_INSTALL=1     never install, only report
#   PREREQS_LIBCLANG_SEARCH  colon-separated folders searched for libclang
#                            instead of the ones bindgen (clang-sys) searches
#   PYTHON                   the Python to check (default python3)
set -uo pipefail

py="${PYTHON:-python3}"
missing_pkgs=()   # Debian packages that provide what is missing
missing_what=()   # what is missing, for the message

need() { missing_what+=("$1"); missing_pkgs+=("$2"); }

# The folders clang-sys (bindgen's loader) looks in, in its order: LIBCLANG_PATH,
# llvm-config's libdir, the usual system folders, then the linker's cache.
libclang_dirs() {
  if [ -n "${PREREQS_LIBCLANG_SEARCH+x}" ]; then
    tr ':' '\n' <<<"$PREREQS_LIBCLANG_SEARCH"
    return
  fi
  [ -n "${LIBCLANG_PATH:-}" ] && echo "$LIBCLANG_PATH"
  command -v llvm-config >/dev/null 2>&1 && llvm-config --libdir 2>/dev/null
  ls -d /usr/lib/llvm-*/lib /usr/local/lib /usr/lib /usr/lib64 /usr/lib/x86_64-linux-gnu \
    /usr/lib/aarch64-linux-gnu 2>/dev/null
  ldconfig -p 2>/dev/null | awk '/libclang/ {print $NF}' | xargs -r -n1 dirname 2>/dev/null
}

# libclang.so, libclang.so.N or libclang-N.so (not libclang-cpp, which LLVM
# installs without the C library bindgen loads).
have_libclang() {
  local dir f
  while IFS= read -r dir; do
    [ -n "$dir" ] && [ -d "$dir" ] || continue
    for f in "$dir"/libclang.so "$dir"/libclang.so.* "$dir"/libclang-[0-9]*.so "$dir"/libclang-[0-9]*.so.*; do
      [ -e "$f" ] && return 0
    done
  done < <(libclang_dirs)
  return 1
}

check_python() {
  if ! command -v "$py" >/dev/null 2>&1; then
    need "python3" "python3"; return
  fi
  "$py" -m pip --version >/dev/null 2>&1 || need "pip for $py" "python3-pip"
  "$py" -c 'import venv, ensurepip' >/dev/null 2>&1 || need "venv for $py" "python3-venv"
}

for group in "$@"; do
  case "$group" in
    build)
      command -v cargo >/dev/null 2>&1 || {
        echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
        exit 1
      }
      command -v cc >/dev/null 2>&1 || need "a C compiler (cc)" "build-essential"
      # The XGBoost library links against libstdc++ (-lstdc++fs).
      ls /usr/lib/gcc/*/*/libstdc++fs.a >/dev/null 2>&1 || need "libstdc++ development files" "libstdc++-12-dev"
      have_libclang || need "libclang (bindgen loads it to generate the XGBoost bindings)" "libclang-dev"
      check_python
      ;;
    python) check_python ;;
    node)
      command -v node >/dev/null 2>&1 || need "node" "nodejs"
      command -v npm >/dev/null 2>&1 || need "npm" "npm"
      ;;
    browser)
      command -v chromium >/dev/null 2>&1 || need "chromium (headless browser tests)" "chromium"
      ;;
    image)
      command -v buildah >/dev/null 2>&1 || need "buildah (builds and runs the container image)" "buildah"
      command -v debootstrap >/dev/null 2>&1 || need "debootstrap (the image's base file system)" "debootstrap"
      command -v patchelf >/dev/null 2>&1 || need "patchelf (the image binaries' rpath)" "patchelf"
      command -v jq >/dev/null 2>&1 || need "jq (the image test reads JSON)" "jq"
      ;;
    lambda)
      # scripts/package-lambda.sh: the relocatable bootstrap and its zip.
      command -v patchelf >/dev/null 2>&1 || need "patchelf (rpath of the Lambda package)" "patchelf"
      command -v zip >/dev/null 2>&1 || need "zip (the Lambda package)" "zip"
      command -v strip >/dev/null 2>&1 || need "strip" "binutils"
      ;;
    *) echo "prereqs.sh: unknown group '$group' (expected build, python, node, browser, image or lambda)" >&2; exit 2 ;;
  esac
done

((${#missing_pkgs[@]})) || exit 0

# De-duplicated package list, in order.
pkgs=$(printf '%s\n' "${missing_pkgs[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
what=$(printf '  - %s\n' "${missing_what[@]}")

if [ "${PREREQS_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "prereqs: installing ${pkgs}(missing:" >&2
  echo "$what)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >&2 && apt-get install -y -qq $pkgs >/dev/null; then
    # Check again: the install must have provided what was missing.
    PREREQS_NO_INSTALL=1 exec "$0" "$@"
  fi
  echo "prereqs: apt-get could not install: $pkgs" >&2
  exit 1
fi

{
  echo "Missing before the build can start:"
  echo "$what"
  echo "Install them, then run this again:"
  if command -v apt-get >/dev/null 2>&1; then
    echo "  sudo apt-get install -y $pkgs"
  else
    echo "  (Debian/Ubuntu package names: $pkgs)"
  fi
  if grep -q libclang <<<"$pkgs"; then
    echo "  (or point LIBCLANG_PATH at the folder that holds libclang.so)"
  fi
} >&2
exit 1
