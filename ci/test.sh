#!/usr/bin/env bash
# The README's test command: set up, build and run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/build.sh openmp
ctest --preset openmp
