#!/usr/bin/env bash
# Set up the dependencies (cached) and build one preset: ci/build.sh [preset] (default openmp).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
preset=${1:-openmp}
case $preset in
cuda) bash ci/setup-deps.sh openmp cuda ;;
*) bash ci/setup-deps.sh openmp ;;
esac
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
