#!/usr/bin/env bash
# Installs the build into a fresh prefix, then configures, builds and runs tests/consumer
# against it (find_package(LCA) from a C++-only project): the kernels-only consumer, then the
# same program linked against the whole library.
#   run.sh BUILD_DIR KOKKOS_PREFIX
set -euo pipefail
build=$1 kokkos=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_PREFIX_PATH=$work/prefix;$kokkos" -DCMAKE_CXX_COMPILER="${CXX_FOR_CONSUMER:-c++}" >/dev/null
cmake --build "$work/build" -j 2 >/dev/null
"$work/build/consumer"
"$work/build/consumer_whole"
