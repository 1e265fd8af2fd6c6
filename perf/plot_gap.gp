# Energy gap against time for the first batch of bench_gap --trace FILE:
#   gnuplot -e "in='perf/results/gap_trace_w128.dat'; out='perf/results/gap_w128.png'" perf/plot_gap.gp
# Solid: the certified relative duality gap (max over the batch); dashed: the true relative
# distance to the optimal energy (max over the batch, against the double-precision reference).
set terminal pngcairo size 900,560
set output out
set logscale y
set format y "10^{%L}"
set xlabel "seconds (first batch)"
set ylabel "relative gap / distance to the optimum"
set key outside right
set grid
methods = "lca-tau100 lca-tau50 lca-adaptive fista"
level = 0.001
plot for [i=1:words(methods)] in using (strcol(1) eq word(methods,i) && $2 == level ? $3 : 1/0):6 \
       with lines lw 2 lc i title word(methods,i)." gap", \
     for [i=1:words(methods)] in using (strcol(1) eq word(methods,i) && $2 == level ? $3 : 1/0):($7 > 0 ? $7 : 1/0) \
       with lines dt 2 lc i title word(methods,i)." true"
