#!/bin/sh
# Shape benchmark: neurbf vs instant-ngp at a 500k trainable budget, same steps and
# batch, on two of the shared scans; a point-cloud fit; peak memory of a 512^3 export.
# Run from the repo root, one heavy process at a time: OMP_NUM_THREADS=1 sh bench/sdf_bench.sh
set -e
STEPS=${STEPS:-1500}
OUT=${OUT:-runs/bench-sdf}
for shape in bunny00 fandisk; do
  for field in neurbf instant-ngp; do
    rbfield fit sdf ../shared/data/meshes/$shape.off --field $field --params 500k --steps $STEPS \
      --batch 16384 --res 512 --quiet --eval-every 500 --out $OUT/$shape-$field
  done
done
rbfield fit sdf ../shared/data/meshes/kitten.xyz --field neurbf --params 500k --steps 1000 \
  --batch 16384 --res 512 --quiet --eval-every 500 --out $OUT/kitten-neurbf
/usr/bin/time -v rbfield export mesh $OUT/bunny00-neurbf --res 512 --out $OUT/bunny00-neurbf-512.ply 2> $OUT/export512.time
grep -E "Maximum resident|Elapsed" $OUT/export512.time
