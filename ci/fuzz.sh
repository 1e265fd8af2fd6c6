#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with Debian's clang (ASan + UBSan) straight from
# the host-only parser sources (no Kokkos, no CMake: the normal g++ build is not touched) and
# runs each for a bounded time from its seed corpus tests/fuzz/corpus/<target>/.
#
#   ci/fuzz.sh [seconds per target (default 45)] [target...]   (targets: see TARGETS below)
#
# New inputs the fuzzer finds go to build/fuzz/corpus/<target>/ (the committed seeds are only
# read); a crash, sanitizer report, uncaught exception other than lca::Error, timeout (10 s) or
# out-of-memory (2 GiB) fails the script and leaves the input in build/fuzz/artifacts/<target>/.
# The mutation seed is FUZZ_SEED (default 1, so a CI run is reproducible; 0: libFuzzer picks one).
# To make a finding a regression test: fix the parser, then copy the input into
# tests/fuzz/corpus/<target>/regress-<what>. Reproduce one input: build/fuzz/fuzz_<target> FILE
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_EACH=${1:-45}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(cifar10 idx png config checkpoint)
OUT=build/fuzz
CXX=${FUZZ_CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (ci/setup-deps.sh installs clang)" >&2; exit 1; }
mkdir -p "$OUT/obj"

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
CXXFLAGS=(-std=c++17 -g -O1 "${SAN[@]}" -Isrc -Iapps -Itests/fuzz
  -DLCA_BUILTIN_PHOTOS="\"$PWD/inputs/photos-skimage.txt\""
  $(pkg-config --cflags hdf5-openmpi libpng zlib))
LIBS=($(pkg-config --libs hdf5-openmpi libpng zlib))
SOURCES=(kernels/params io/dataset io/dataset_idx io/dataset_cifar10 io/dataset_png io/image_png io/h5 io/checkpoint io/atomic_file)

echo "== fuzz: building ${TARGETS[*]} with $CXX"
build_start=$(date +%s)
objs=()
pids=()
for s in "${SOURCES[@]}"; do # the parsers, instrumented for coverage
  "$CXX" "${CXXFLAGS[@]}" -fsanitize=fuzzer-no-link -c "src/$s.cpp" -o "$OUT/obj/${s##*/}.o" &
  pids+=($!)
  objs+=("$OUT/obj/${s##*/}.o")
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
ar rcs "$OUT/libparsers.a" "${objs[@]}"
pids=()
for t in "${TARGETS[@]}"; do
  "$CXX" "${CXXFLAGS[@]}" -fsanitize=fuzzer "tests/fuzz/fuzz_$t.cpp" "$OUT/libparsers.a" \
    "${LIBS[@]}" -o "$OUT/fuzz_$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
echo "   built in $(($(date +%s) - build_start)) s"

export UBSAN_OPTIONS=print_stacktrace=1

status=0
summary=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
  log=$OUT/fuzz_$t.log
  echo "== fuzz_$t: ${SECONDS_EACH} s from tests/fuzz/corpus/$t ($(ls tests/fuzz/corpus/$t | wc -l) seeds)"
  rc=0
  "$OUT/fuzz_$t" -seed="${FUZZ_SEED:-1}" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" \
    "$OUT/corpus/$t" "tests/fuzz/corpus/$t" </dev/null >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 || true)
  if [ $rc -ne 0 ]; then
    status=1
    echo "   FINDING (exit $rc), input in $OUT/artifacts/$t/:"
    grep -E 'ERROR|SUMMARY|terminate|what\(\)|==[0-9]+==' "$log" | head -n 20 | sed 's/^/   /'
    summary+=("fuzz_$t: FINDING after ${runs:-?} executions")
  else
    summary+=("fuzz_$t: ${runs:-?} executions in ${SECONDS_EACH} s, $cov, no findings")
  fi
done
echo "== fuzz summary"
printf '   %s\n' "${summary[@]}"
exit $status
