#!/usr/bin/env bash
# Builds Kokkos + Kokkos Kernels 4.x (OpenMP + Serial, OpenBLAS as the BLAS TPL, only the BLAS
# component, ETI for float/double, LayoutLeft, OpenMP) from source trees already on disk. It
# downloads nothing: it is for developers who hold the two repositories (users of Spack already
# have a Kokkos 4.x). CI does not run it. Checked with Kokkos 4.6.01 + Kokkos Kernels 4.6.02.
#
#   ci/setup-kokkos4.sh SRC_DIR [PREFIX]
#
# SRC_DIR holds kokkos/ and kokkos-kernels/, e.g. from
#   git -C kokkos archive 4.6.01 | tar x -C SRC_DIR/kokkos
#   git -C kokkos-kernels archive 4.6.02 | tar x -C SRC_DIR/kokkos-kernels
# PREFIX: default $LCA_KOKKOS4_PREFIX, else /opt/kokkos46 (the `kokkos4` CMake preset's default).
# Logs: $LCA_KOKKOS4_LOGS (default PREFIX-build-logs). Build trees: $LCA_KOKKOS4_BUILD (default
# a temporary directory, removed on success). ccache is used when it is on PATH.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: ci/setup-kokkos4.sh SRC_DIR [PREFIX]" >&2; exit 2; }
SRC=$(realpath "$1")
PREFIX=${2:-${LCA_KOKKOS4_PREFIX:-/opt/kokkos46}}
LOGS=${LCA_KOKKOS4_LOGS:-$PREFIX-build-logs}
JOBS=${JOBS:-$(nproc)}
# The same OpenBLAS as ci/setup-deps.sh: the OpenMP build shares Kokkos' OpenMP runtime.
BLAS_DIR=${LCA_BLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-openmp}

for d in kokkos kokkos-kernels; do
  [ -f "$SRC/$d/CMakeLists.txt" ] || { echo "setup-kokkos4: no $SRC/$d/CMakeLists.txt" >&2; exit 1; }
done
[ -e "$BLAS_DIR/libopenblas.so" ] ||
  { echo "setup-kokkos4: no OpenBLAS in $BLAS_DIR (apt install libopenblas-openmp-dev)" >&2; exit 1; }

log() { printf '[setup-kokkos4] %s\n' "$*"; }
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
keep=1
if [ -z "${LCA_KOKKOS4_BUILD:-}" ]; then
  LCA_KOKKOS4_BUILD=$(mktemp -d)
  keep=0
fi
BUILD=$LCA_KOKKOS4_BUILD
mkdir -p "$LOGS" "$BUILD"

common=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="${CXX:-g++}" -DCMAKE_CXX_STANDARD=17
  -DCMAKE_INSTALL_PREFIX="$PREFIX" -DBUILD_SHARED_LIBS=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  "${launcher[@]}")

run() { # run LOG CMD...: appends to LOG, shows its tail on failure
  local l=$1
  shift
  "$@" >>"$l" 2>&1 || { tail -n 40 "$l"; echo "setup-kokkos4: failed, see $l" >&2; exit 1; }
}

log "Kokkos from $SRC/kokkos ($JOBS jobs), log $LOGS/kokkos.log"
: >"$LOGS/kokkos.log"
run "$LOGS/kokkos.log" cmake -S "$SRC/kokkos" -B "$BUILD/kokkos" "${common[@]}" \
  -DKokkos_ENABLE_SERIAL=ON -DKokkos_ENABLE_OPENMP=ON -DKokkos_ENABLE_TESTS=OFF \
  -DKokkos_ENABLE_EXAMPLES=OFF
run "$LOGS/kokkos.log" cmake --build "$BUILD/kokkos" -j "$JOBS"
run "$LOGS/kokkos.log" cmake --install "$BUILD/kokkos"

log "Kokkos Kernels from $SRC/kokkos-kernels (BLAS only, ETI float/double), log $LOGS/kokkos-kernels.log"
: >"$LOGS/kokkos-kernels.log"
run "$LOGS/kokkos-kernels.log" cmake -S "$SRC/kokkos-kernels" -B "$BUILD/kk" "${common[@]}" \
  -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON -DKokkos_ROOT="$PREFIX" \
  -DKokkosKernels_ENABLE_ALL_COMPONENTS=OFF -DKokkosKernels_ENABLE_COMPONENT_BLAS=ON \
  -DKokkosKernels_ENABLE_TESTS=OFF -DKokkosKernels_ENABLE_EXAMPLES=OFF \
  -DKokkosKernels_ENABLE_PERFTESTS=OFF \
  -DKokkosKernels_ENABLE_TPL_BLAS=ON -DBLAS_LIBRARY_DIRS="$BLAS_DIR" -DBLAS_LIBRARIES=openblas \
  -DKokkosKernels_ENABLE_TPL_LAPACK=OFF \
  -DKokkosKernels_ADD_DEFAULT_ETI=OFF -DKokkosKernels_INST_DOUBLE=ON -DKokkosKernels_INST_FLOAT=ON \
  -DKokkosKernels_INST_COMPLEX_DOUBLE=OFF -DKokkosKernels_INST_COMPLEX_FLOAT=OFF \
  -DKokkosKernels_INST_LAYOUTLEFT=ON -DKokkosKernels_INST_LAYOUTRIGHT=OFF \
  -DKokkosKernels_INST_MEMSPACE_HOSTSPACE=ON -DKokkosKernels_INST_EXECSPACE_OPENMP=ON \
  -DKokkosKernels_INST_EXECSPACE_SERIAL=OFF \
  -DKokkosKernels_INST_OFFSET_INT=OFF -DKokkosKernels_INST_OFFSET_SIZE_T=OFF \
  -DKokkosKernels_INST_ORDINAL_INT=OFF
run "$LOGS/kokkos-kernels.log" cmake --build "$BUILD/kk" -j "$JOBS"
run "$LOGS/kokkos-kernels.log" cmake --install "$BUILD/kk"

{
  echo "kokkos $(sed -n 's/^ *set(Kokkos_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)).*/\2/Ip' "$SRC/kokkos/CMakeLists.txt" | paste -sd.)"
  echo "kokkos-kernels $(sed -n 's/^ *set(KokkosKernels_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)).*/\2/Ip' "$SRC/kokkos-kernels/CMakeLists.txt" | paste -sd.)"
} >"$PREFIX/.complete"
[ $keep -eq 1 ] || rm -rf "$BUILD"
log "installed into $PREFIX ($(paste -sd' ' "$PREFIX/.complete"))"
