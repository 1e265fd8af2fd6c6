#!/usr/bin/env bash
# Installs everything kokkos-lca needs on Debian 12 and builds Kokkos + Kokkos Kernels 3.4.01
# from Debian's own trilinos source package (Debian's binary Kokkos is Serial-only).
# Idempotent and cached: a second run only checks stamps.
#
#   ci/setup-deps.sh [openmp|cuda]...   (default: openmp)
#
# Prefix: $LCA_DEPS_PREFIX (default /opt/kokkos-lca-deps); each backend goes to <prefix>/<backend>.
set -euo pipefail

PREFIX=${LCA_DEPS_PREFIX:-/opt/kokkos-lca-deps}
BACKENDS=("$@")
[ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(openmp)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOBS=$(nproc)
# OpenBLAS built for OpenMP shares the OpenMP runtime with Kokkos: the pthread build's own
# threads fight Kokkos' spinning OpenMP threads for the cores (measured: sgemm 2x slower).
BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
# Bump when the build recipe changes: a cached prefix with another recipe is rebuilt.
RECIPE="kokkos-3.4.01 kokkoskernels-3.4.01 eti-off blas=openblas-openmp r3"
# What a backend's install was built from: the recipe, and for cuda the patch it applies.
stamp() {
  if [ "$1" = cuda ]; then
    echo "$RECIPE patch=$(sha256sum <"$HERE/kokkos-3.4.01-cuda13.patch" | cut -c1-16)"
  else
    echo "$RECIPE"
  fi
}

log() { printf '[setup-deps] %s\n' "$*"; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# --- Debian packages -------------------------------------------------------------------------
PKGS=(g++ cmake make ninja-build pkg-config dpkg-dev xz-utils
  openmpi-bin libopenmpi-dev libhdf5-openmpi-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev libopenblas-openmp-dev zlib1g-dev libpng-dev
  dataset-fashion-mnist python3-skimage gnuplot-nox clang-format python3-h5py
  clang libclang-rt-14-dev) # ci/fuzz.sh: clang-14 with libFuzzer and the sanitizer runtimes
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/tmp/kokkos-lca-apt.log 2>&1 || { tail -n 30 /tmp/kokkos-lca-apt.log; exit 1; }
fi

# --- Kokkos sources from Debian's trilinos source package -------------------------------------
SRC=$PREFIX/src
need_build=0
for b in "${BACKENDS[@]}"; do [ "$(cat "$PREFIX/$b/.complete" 2>/dev/null)" = "$(stamp "$b")" ] || need_build=1; done
if [ $need_build -eq 1 ] && [ ! -f "$SRC/.complete" ]; then
  # A deb-src entry derived from the machine's own apt sources (no archive host is hard-coded).
  if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding deb-src entries derived from the existing apt sources"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
        $SUDO tee /etc/apt/sources.list.d/kokkos-lca-src.sources >/dev/null
    else
      grep -h '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
        $SUDO tee /etc/apt/sources.list.d/kokkos-lca-src.list >/dev/null
    fi
    $SUDO apt-get update -qq
  fi
  $SUDO mkdir -p "$SRC"
  tmp=$(mktemp -d)
  log "fetching the trilinos source package (Kokkos 3.4.01 lives in it)"
  (cd "$tmp" && apt-get source --download-only -qq trilinos 2>&1 | grep -v unsandboxed || true)
  ls "$tmp"/trilinos_*.orig.tar.* >/dev/null
  orig=$(ls "$tmp"/trilinos_*.orig.tar.* | head -n1)
  log "extracting packages/kokkos and packages/kokkos-kernels from $(basename "$orig")"
  tar xf "$orig" -C "$tmp" --wildcards '*/packages/kokkos/*' '*/packages/kokkos-kernels/*'
  top=$(basename "$(dirname "$(dirname "$(ls -d "$tmp"/*/packages/kokkos)")")")
  $SUDO rm -rf "$SRC/kokkos" "$SRC/kokkos-kernels"
  $SUDO mv "$tmp/$top/packages/kokkos" "$SRC/kokkos"
  $SUDO mv "$tmp/$top/packages/kokkos-kernels" "$SRC/kokkos-kernels"
  rm -rf "$tmp"
  $SUDO touch "$SRC/.complete"
fi

# --- Build one backend -----------------------------------------------------------------------
build_backend() {
  local b=$1 dest=$PREFIX/$1
  if [ "$(cat "$dest/.complete" 2>/dev/null)" = "$(stamp "$b")" ]; then
    log "$b: cached in $dest"
    return
  fi
  $SUDO rm -rf "$dest"
  local kokkos_opts=() kk_opts=() cxx=g++ bdir
  case $b in
  openmp)
    kokkos_opts=(-DKokkos_ENABLE_SERIAL=ON -DKokkos_ENABLE_OPENMP=ON)
    ;;
  cuda)
    command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
    command -v nvcc >/dev/null || { echo "setup-deps: cuda backend requested but nvcc not found" >&2; exit 1; }
    # nvcc_wrapper's built-in default arch (sm_35) is rejected by CUDA >= 12; the patch below makes
    # it read this variable (used by CMake's compiler checks, before Kokkos adds its own -arch).
    export NVCC_WRAPPER_DEFAULT_ARCH=${NVCC_WRAPPER_DEFAULT_ARCH:-sm_80}
    local ksrc=$PREFIX/src/kokkos-cuda patch=$HERE/kokkos-3.4.01-cuda13.patch
    local psum
    psum=$(sha256sum <"$patch")
    if [ "$(cat "$ksrc/.patched" 2>/dev/null)" != "$psum" ]; then # (re)patch if the patch changed
      $SUDO rm -rf "$ksrc"
      $SUDO cp -r "$PREFIX/src/kokkos" "$ksrc"
      (cd "$ksrc" && $SUDO patch -p1 -s <"$patch")
      echo "$psum" | $SUDO tee "$ksrc/.patched" >/dev/null
    fi
    cxx=$ksrc/bin/nvcc_wrapper
    kokkos_opts=(-DKokkos_ENABLE_SERIAL=ON -DKokkos_ENABLE_OPENMP=ON -DKokkos_ENABLE_CUDA=ON
      -DKokkos_ENABLE_CUDA_LAMBDA=ON "-DKokkos_ARCH_${LCA_CUDA_ARCH:-AMPERE80}=ON")
    # Kokkos Kernels 3.4 finds cuBLAS through CMake's FindCUDA (CUDA_CUBLAS_LIBRARIES); cuSPARSE
    # would be on by default with CUDA but kokkos-lca does not use it.
    # The toolkit root comes from nvcc itself: the nvcc first on PATH may be a wrapper script
    # outside the toolkit (e.g. /usr/local/bin/nvcc exec'ing /usr/local/cuda-13.0/bin/nvcc).
    local cuda_root
    cuda_root=$(nvcc --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)
    cuda_root=$(realpath "${cuda_root:-$(dirname "$(dirname "$(command -v nvcc)")")}")
    [ -f "$cuda_root/include/cuda_runtime.h" ] ||
      { echo "setup-deps: no CUDA toolkit headers under $cuda_root (from nvcc)" >&2; exit 1; }
    kk_opts=(-DKokkosKernels_ENABLE_TPL_CUBLAS=ON -DKokkosKernels_ENABLE_TPL_CUSPARSE=OFF
      -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root")
    ;;
  *)
    echo "setup-deps: unknown backend '$b' (openmp|cuda)" >&2
    exit 2
    ;;
  esac
  local ksrc_dir=$PREFIX/src/kokkos
  [ "$b" = cuda ] && ksrc_dir=$PREFIX/src/kokkos-cuda
  bdir=$(mktemp -d)
  log "$b: building Kokkos 3.4.01 ($JOBS jobs)"
  cmake -S "$ksrc_dir" -B "$bdir/kokkos" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_STANDARD=17 -DCMAKE_INSTALL_PREFIX="$dest" -DBUILD_SHARED_LIBS=ON \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON "${kokkos_opts[@]}" >"$bdir/kokkos.log"
  cmake --build "$bdir/kokkos" -j "$JOBS" >>"$bdir/kokkos.log" 2>&1 ||
    { tail -n 40 "$bdir/kokkos.log"; exit 1; }
  $SUDO cmake --install "$bdir/kokkos" >/dev/null
  log "$b: building Kokkos Kernels 3.4.01 (OpenBLAS TPL, ETI off)"
  cmake -S "$PREFIX/src/kokkos-kernels" -B "$bdir/kk" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_STANDARD=17 -DCMAKE_INSTALL_PREFIX="$dest" \
    -DBUILD_SHARED_LIBS=ON -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON -DKokkos_ROOT="$dest" \
    -DKokkosKernels_ENABLE_TPL_BLAS=ON \
    -DBLAS_LIBRARY_DIRS="$BLAS_DIR" -DBLAS_LIBRARIES=openblas -DKokkosKernels_ENABLE_TPL_LAPACK=OFF \
    -DKokkosKernels_ADD_DEFAULT_ETI=OFF -DKokkosKernels_INST_DOUBLE=OFF -DKokkosKernels_INST_FLOAT=OFF \
    -DKokkosKernels_INST_LAYOUTLEFT=OFF -DKokkosKernels_INST_OFFSET_INT=OFF \
    -DKokkosKernels_INST_OFFSET_SIZE_T=OFF -DKokkosKernels_INST_ORDINAL_INT=OFF \
    "${kk_opts[@]}" >"$bdir/kk.log" 2>&1 || { tail -n 40 "$bdir/kk.log"; exit 1; }
  cmake --build "$bdir/kk" -j "$JOBS" >>"$bdir/kk.log" 2>&1 || { tail -n 40 "$bdir/kk.log"; exit 1; }
  $SUDO cmake --install "$bdir/kk" >/dev/null
  rm -rf "$bdir"
  stamp "$b" | $SUDO tee "$dest/.complete" >/dev/null
  log "$b: installed into $dest"
}

for b in "${BACKENDS[@]}"; do build_backend "$b"; done
