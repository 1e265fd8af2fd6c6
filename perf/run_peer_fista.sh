#!/usr/bin/env bash
# Time to a certified gap, kokkos-lca against the PyTorch FISTA peer (perf/README.md, "FISTA's
# restart rule, and the PyTorch FISTA peer"): bench_gap (FISTA and coordinate descent, with and
# without the support solve) and perf/bench_torch.py --solver fista alternate REPS times on the
# same checkpoint and images; prints the median images/s of each at each level. Needs
# python3-torch and h5py.
#   bash perf/run_peer_fista.sh CHECKPOINT IMAGES_FILE FORMAT N [REPS=3]
#   FORMAT: cifar10 (a CIFAR-10 binary batch) or fashion-mnist (t10k-images-idx3-ubyte.gz)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 4 ] || { echo "usage: $0 CHECKPOINT IMAGES_FILE cifar10|fashion-mnist N [REPS]" >&2; exit 2; }
ck=$1 images=$2 format=$3 n=$4 reps=${5:-3}
case $format in
  cifar10) data=(--data cifar10 --data-path "$images") ;;
  fashion-mnist) data=(--data fashion-mnist --split test) ;;
  *) echo "$0: FORMAT must be cifar10 or fashion-mnist, not '$format'" >&2; exit 2 ;;
esac
bin=build/openmp/perf/bench_gap
export OMP_NUM_THREADS=2
# Both sides multiply through OpenBLAS, which misdetects some AVX-512 CPUs: name its kernels
# (over any inherited setting, so that neither side runs older ones than the CPU has).
if grep -qw avx512bw /proc/cpuinfo; then export OPENBLAS_CORETYPE=SKYLAKEX
elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=HASWELL; fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $OMP_NUM_THREADS threads, $reps runs of each"
log=$(mktemp)
for r in $(seq "$reps"); do
  for polish in "" --no-polish; do
    OMP_PROC_BIND=spread OMP_PLACES=threads "$bin" -c "$ck" "${data[@]}" --images "$n" \
      --methods fista,cd $polish --levels 1e-2,1e-3 --json /dev/null |
      awk -v p="${polish:+ --no-polish}" -F'|' '/^\| (FISTA|CD) / {
        gsub(/ /, "", $2); print "kokkos-lca " tolower($2) p "|" $3 "|" $6}' >>"$log"
  done
  /usr/bin/python3 perf/bench_torch.py --solver fista -c "$ck" --data-path "$images" \
    --images "$n" --levels 1e-2,1e-3 | awk -F'|' '/^\| 0\./ {print "pytorch|" $2 "|" $5}' >>"$log"
done
/usr/bin/python3 - "$log" "$reps" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m, level, rate = (f.strip() for f in line.split("|"))
    rows.setdefault((m, float(level)), []).append(float(rate))
print(f"median images/s over {sys.argv[2]} alternating runs")
print("| solver | level | images/s (median) | runs |\n|---|---:|---:|---|")
for (m, level), v in sorted(rows.items()):
    print(f"| {m} | {level:g} | {statistics.median(v):.1f} | {' '.join(f'{x:.1f}' for x in v)} |")
PY
rm -f "$log"
