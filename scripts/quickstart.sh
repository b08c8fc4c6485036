#!/usr/bin/env bash
# The main job, from a fresh clone: set up, then prepare -> features -> train -> report -> predict.
#
#   bash scripts/quickstart.sh            # EmoDB from ../shared/data/emodb (or $VOCALIS_EMODB)
#   EPOCHS=5 bash scripts/quickstart.sh   # shorter training
#
# Without EmoDB it runs on the 14 bundled sample clips (a smoke run, not a result).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

EMODB="${VOCALIS_EMODB:-../shared/data/emodb}"
OUT="${OUT:-runs/quickstart}"
mkdir -p work
if [ -d "$EMODB/wav" ]; then
    vocalis prepare emodb "$EMODB" --out work/emodb.csv
    MANIFEST=work/emodb.csv
    EPOCHS="${EPOCHS:-30}"
else
    echo "quickstart: EmoDB not found at $EMODB; using the bundled 14-clip sample"
    MANIFEST="$(python -c 'from vocalis.testing import sample_manifest_path as p; print(p())')"
    EPOCHS="${EPOCHS:-3}"
fi

# features once, cached (the training run below reuses the cache)
vocalis features "$MANIFEST" --features mfcc --cache work/cache/features
# speaker-independent validation: whole speakers held out
vocalis train --config configs/recipes/emodb_tier1.yaml --manifest "$MANIFEST" \
    --epochs "$EPOCHS" --out "$OUT" --no-progress
vocalis report "$OUT"          # report.html: validation metrics, confusion matrix, curves
vocalis predict "$(python -c 'from vocalis.testing import samples_dir as s; print(sorted(s().glob("**/*.wav"))[0])')" \
    --checkpoint "$OUT/checkpoints/best.pt"
echo "quickstart: run folder $OUT (config.yaml, history.csv, metrics.json, checkpoints/)"
