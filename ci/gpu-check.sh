#!/usr/bin/env bash
# Runs the CUDA build packed by ci/gpu-bundle.sh on a GPU machine without this project's
# dependencies: the unit suite (Cuda backend in float and double, and Serial), the benchmark
# (W64/W128/W256 at batch 16, 256 and 1024; Fashion-MNIST shape at 256) with the GPU's
# measured FP32 peak, lca-train on 10,000 Fashion-MNIST images, the README's main job (the
# study of inputs/fashion-mnist-study.toml), and compute-sanitizer's memcheck on the kernel
# tests. Each step has its own time limit; one failing does not stop the others.
#
#   ci/gpu-check.sh BUNDLE.tar.xz OUTDIR
#
# OUTDIR gets: summary.log (GPU, step results), tests.log, bench.log, extra.log (training,
# study, memcheck), bench-json.tar (bench_<workload>.json) and sweep.h5 (the study's).
set -uo pipefail
bundle=$1
out=$2
mkdir -p "$out"
work=/tmp/lca-gpu
rm -rf "$work" && mkdir -p "$work" && tar -C "$work" -xJf "$bundle" || exit 1
cp -a "$work/root/." / # OpenMPI and PMIx look for their plugins at their configured paths
cublas=$(find /usr/local /opt /usr/lib -name 'libcublas.so.13*' 2>/dev/null | head -n1)
export LD_LIBRARY_PATH=$work/lib:${cublas:+$(dirname "$cublas"):}/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
# MPI as a singleton without a daemon; only the plugins a single process needs.
export OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_mca_base_component_show_load_errors=0 \
  OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_osc=pt2pt OMPI_ALLOW_RUN_AS_ROOT=1 \
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_PROC_BIND=false PATH=$PATH:/usr/local/cuda/bin
summary=$out/summary.log
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvidia-smi
  echo "cuBLAS: ${cublas:-not found}"
} >"$summary" 2>&1

# A program built against a newer C library than this machine's runs through the bundled loader.
run=()
deps=$(LD_TRACE_LOADED_OBJECTS=1 "$work/bin/test_lca" 2>&1)
if grep -q 'GLIBC_' <<<"$deps"; then
  echo "this machine's C library is too old: using the bundled glibc loader" >>"$summary"
  run=("$work/lib/glibc/ld-linux-x86-64.so.2" --library-path "$work/lib/glibc:$LD_LIBRARY_PATH")
fi
grep 'not found' <<<"$deps" >>"$summary"

step() { # step NAME SECONDS LOG command...
  local name=$1 limit=$2 log=$3 t0=$SECONDS rc
  shift 3
  echo "== $name" >>"$log"
  timeout -k 5 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  echo "$name: exit $rc after $((SECONDS - t0)) s" | tee -a "$summary"
}

bin=$work/bin
step "unit tests" 90 "$out/tests.log" "${run[@]}" "$bin/test_lca"
grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/tests.log" >>"$summary"
step "bench W64/W128/W256 batch 16" 60 "$out/bench.log" "${run[@]}" "$bin/bench_lca" \
  --nf 64,128,256 --batch 16 --reps 5 --json "$work/bench_3x32x32_b16.json"
for b in 256 1024; do
  step "bench W64/W128/W256 batch $b" 60 "$out/bench.log" "${run[@]}" "$bin/bench_lca" \
    --nf 64,128,256 --batch $b --reps 5 --no-peak --json "$work/bench_3x32x32_b$b.json"
done
step "bench 1x28x28 batch 256" 45 "$out/bench.log" "${run[@]}" "$bin/bench_lca" \
  --shape 1x28x28 --nf 64,128,256 --batch 256 --reps 5 --no-peak \
  --json "$work/bench_1x28x28_b256.json"
grep -E 'measured|image-iterations|drive GEMM|nf=' "$out/bench.log" >>"$summary"
tar -C "$work" -cf "$out/bench-json.tar" $(cd "$work" && ls bench_*.json)
step "lca-train Fashion-MNIST, 10000 images" 60 "$out/extra.log" "${run[@]}" "$bin/lca-train" \
  --data fashion-mnist --data-path "$work/data" --subset 10000 --nf 128 --batch 250 --epochs 2 \
  --iterations 400 --progress 5 -o /tmp/lca-gpu-train/checkpoint.h5
grep -E 'done|summary|images/s' "$out/extra.log" >>"$summary"
step "lca-scaling run, the README's study" 150 "$out/extra.log" "${run[@]}" \
  "$bin/lca-scaling" --config inputs/fashion-mnist-study.toml run --data-path "$work/data" \
  --out-dir /tmp/lca-gpu-study
cp /tmp/lca-gpu-study/sweep.h5 "$out/" 2>/dev/null
grep -E 'grid done|points|summary' "$out/extra.log" | tail -n 3 >>"$summary"
if command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer memcheck, kernel tests" 60 "$out/extra.log" compute-sanitizer \
    --tool memcheck --error-exitcode 3 "${run[@]}" "$bin/test_lca" \
    --gtest_filter='Conv/*_Cuda.*:Solver/float_Cuda.*:Learning/float_Cuda.*'
  grep -E 'ERROR SUMMARY' "$out/extra.log" >>"$summary"
fi
