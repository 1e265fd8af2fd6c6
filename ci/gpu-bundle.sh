#!/usr/bin/env bash
# Packs the CUDA build for a GPU machine that has the NVIDIA driver and CUDA 13's cuBLAS but
# none of this project's dependencies (no MPI, HDF5, OpenBLAS or Kokkos): the unit tests, the
# benchmark and the apps, every shared library they and OpenMPI's plugins load (except glibc,
# the driver and cuBLAS, which that machine has), OpenMPI's and PMIx's plugin trees (they are
# found at their configured paths, so ci/gpu-check.sh unpacks them at /), glibc's own loader as
# a fallback for an older C library there, and Fashion-MNIST (the built-in data set).
#
#   ci/gpu-bundle.sh [build dir (build/cuda)] [output dir (.gpu)]   -> OUTPUT/bundle.tar.xz
#
# On the GPU machine, from a checkout of this repository: ci/gpu-check.sh OUTPUT/bundle.tar.xz DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build/cuda}
out=${2:-.gpu}
bins=("$build/tests/test_lca" "$build/perf/bench_lca" "$build/apps/lca-train"
  "$build/apps/lca-denoise" "$build/apps/lca-scaling")
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "gpu-bundle: $b not built (ci/build.sh cuda)" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib/glibc" "$stage/root" "$stage/data" "$out"
cp "${bins[@]}" "$stage/bin/"

trees=()
for t in /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 /usr/lib/x86_64-linux-gnu/pmix2/lib/pmix \
  /usr/share/openmpi /usr/share/pmix /etc/openmpi; do
  [ -e "$t" ] && trees+=("$t")
done
tar -cf - "${trees[@]}" 2>/dev/null | tar -C "$stage/root" -xf -

# Shared libraries, resolved here; glibc's go to lib/glibc (used only through its loader).
glibc='^(ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv)\.so'
skip='^(linux-vdso|libcuda|libnvidia|libcublas)'
plugins=$(find "${trees[@]}" -name '*.so' 2>/dev/null)
for f in "${bins[@]}" $plugins; do
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3} $1 ~ /^\// {print $1, $1}'
done | sort -u | while read -r name path; do
  base=$(basename "$name")
  if [[ $base =~ $glibc ]]; then
    cp -Ln "$path" "$stage/lib/glibc/$base"
  elif ! [[ $base =~ $skip ]]; then
    cp -Ln "$path" "$stage/lib/$base"
  fi
done
cp /usr/share/datasets/fashion-mnist/*-ubyte.gz "$stage/data/"
tar -C "$stage" -cf - . | xz -T2 -6 >"$out/bundle.tar.xz"
echo "gpu-bundle: $out/bundle.tar.xz ($(du -h "$out/bundle.tar.xz" | cut -f1)):" \
  "$(ls "$stage/lib" | wc -l) libraries, ${#trees[@]} plugin trees"
