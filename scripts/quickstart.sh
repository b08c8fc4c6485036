#!/usr/bin/env bash
# The main job, from a fresh clone: set up, then prepare -> train -> evaluate -> report -> predict.
#
#   bash scripts/quickstart.sh               # a few minutes: linear SVM on GE2E statistics
#   bash scripts/quickstart.sh --full        # longer: tier1 on GE2E frames, 20 epochs
#   EPOCHS=30 bash scripts/quickstart.sh     # the same --full run with 30 epochs
#   bash scripts/quickstart.sh --skip-setup  # already installed: the main job only
#
# EmoDB is read from ../shared/data/emodb (or $VOCALIS_EMODB). Speaker 03 is held out
# as the test speaker: the model never sees it; the other 9 speakers train it and
# validate it (held-out speakers). Without EmoDB it runs on the 14 bundled sample
# clips (2 speakers): a smoke run, not a result. Run folder: $OUT (runs/quickstart);
# manifests: $WORK (work/).
set -euo pipefail
cd "$(dirname "$0")/.."

FULL=0
SETUP=1
for arg in "$@"; do
    case "$arg" in
        --full) FULL=1 ;;
        --skip-setup) SETUP=0 ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "quickstart: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done
[ -n "${EPOCHS:-}" ] && FULL=1

step() { printf '\n[%s] quickstart: %s\n' "$(date +%H:%M:%S)" "$*"; }

step "set-up: scripts/setup.sh (pip install -e .[dev]; quick when already installed)"
if [ "$SETUP" = 1 ]; then bash scripts/setup.sh; else echo "skipped (--skip-setup)"; fi

START=$SECONDS
LOAD="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')"
EMODB="${VOCALIS_EMODB:-../shared/data/emodb}"
TEST_SPEAKER="${TEST_SPEAKER:-03}"
WORK="${WORK:-work}"   # manifests of this run
mkdir -p "$WORK"
if [ -d "$EMODB/wav" ]; then
    step "prepare: EmoDB manifest from $EMODB (path, label, speaker, ...)"
    vocalis prepare emodb "$EMODB" --out "$WORK/emodb.csv"
    MANIFEST="$WORK/emodb.csv"
else
    step "prepare: EmoDB not found at $EMODB; using the 14 bundled clips (a smoke run)"
    MANIFEST="$(python -c 'from vocalis.testing import sample_manifest_path as p; print(p())')"
    TEST_SPEAKER=""
fi

# Speaker $TEST_SPEAKER is the test speaker; the others train (and validate) the model.
python - "$MANIFEST" "$TEST_SPEAKER" "$WORK" <<'EOF'
import csv, os, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
for r in rows:  # paths relative to the manifest's folder stay valid in work/
    r["path"] = os.path.abspath(os.path.join(os.path.dirname(sys.argv[1]), r["path"]))
test = [r for r in rows if sys.argv[2] and r["speaker"] == sys.argv[2]]
train = [r for r in rows if r not in test]
for name, part in (("train", train), ("test", test)):
    with open(f"{sys.argv[3]}/quickstart_{name}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(part)
n_spk = len({r["speaker"] for r in train})
print(f"{len(train)} training clips of {n_spk} speakers; {len(test)} test clips"
      + (f" of speaker {sys.argv[2]}" if test else ""))
EOF

if [ "$FULL" = 1 ]; then
    OUT="${OUT:-runs/quickstart-full}"
    EPOCHS="${EPOCHS:-20}"
    step "train: tier1 on frozen GE2E frames, $EPOCHS epochs; validation on held-out speakers"
    vocalis train --config configs/recipes/emodb_ge2e_tier1.yaml \
        --manifest "$WORK/quickstart_train.csv" --epochs "$EPOCHS" --out "$OUT" --overwrite
else
    OUT="${OUT:-runs/quickstart}"
    step "train: linear SVM on GE2E layer-2 statistics (recipe emodb_quickstart);" \
        "C chosen by leave-one-speaker-out on the training speakers"
    vocalis train --config configs/recipes/emodb_quickstart.yaml \
        --manifest "$WORK/quickstart_train.csv" --out "$OUT" --overwrite
fi

CLIP=""
if [ -n "$TEST_SPEAKER" ]; then
    step "eval: the model on speaker $TEST_SPEAKER, never seen in training"
    vocalis eval "$OUT" --manifest "$WORK/quickstart_test.csv" --out "$OUT/test" --no-progress
    CLIP="$(python -c 'import csv, sys; print(next(csv.DictReader(open(sys.argv[1])))["path"])' "$WORK/quickstart_test.csv")"
else
    CLIP="$(python -c 'import csv, sys; print(next(csv.DictReader(open(sys.argv[1])))["path"])' "$WORK/quickstart_train.csv")"
fi

step "report: $OUT/report.html (validation and test metrics, confusion matrix, errors)"
vocalis report "$OUT"

step "predict: one clip (of the test speaker when there is one) with the run's model.pt"
vocalis predict "$CLIP" --checkpoint "$OUT" --json > "$OUT/quickstart_prediction.json"

ELAPSED=$((SECONDS - START))
# user + system CPU seconds of every command above: bash's `times` (run in this shell,
# not in a $(...) subshell, which has no children of its own), second line = children
times > "$OUT/.times"
CPU="$(tail -1 "$OUT/.times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", u[1]*60+u[2]+s[1]*60+s[2] }')"
rm -f "$OUT/.times"
python - "$OUT" "$WORK" "$CLIP" "$TEST_SPEAKER" "$ELAPSED" "$CPU" "$LOAD" "$FULL" <<'EOF'
import csv, json, sys
from pathlib import Path

out, work, clip, speaker, elapsed, cpu, load, full = sys.argv[1:]
metrics = json.loads((Path(out) / "metrics.json").read_text())
test_file = Path(out) / "test" / "metrics.json"
test = json.loads(test_file.read_text())["test"] if test_file.is_file() else None
pred = json.loads((Path(out) / "quickstart_prediction.json").read_text())
split = f"{work}/quickstart_test.csv" if speaker else f"{work}/quickstart_train.csv"
truth = {r["path"]: r["label"] for r in csv.DictReader(open(split, newline=""))}[clip]
classes = metrics["classes"]
n_train = metrics["n_rows"]["train"]
if full == "1":
    what = f"tier1 on frozen GE2E frames, {metrics['epochs_run']} epochs (kept: epoch {metrics['best_epoch']})"
    val_uar = (metrics.get("val") or {}).get("uar")
    val_how = "speakers held out from the training speakers"
else:
    what = "linear SVM on GE2E layer-2 statistics (configs/recipes/emodb_quickstart.yaml)"
    val_uar = metrics["details"]["ensemble"]["fused_inner_uar"]
    val_how = "leave-one-speaker-out over the training speakers; C was chosen on it"
answer = pred["label"] or pred["answer"]
confidence = f" ({100 * pred['confidence']:.0f}%)" if pred["confidence"] is not None else ""
verdict = "right" if pred["label"] == truth else "wrong"
rows = [
    ("trained", f"{what}, on {n_train} clips"),
    ("validation", f"UAR {val_uar:.3f} ({val_how}; chance {1 / len(classes):.3f})"),
]
if test is not None:
    rows.append(("test", f"UAR {test['uar']:.3f}, accuracy {test['accuracy']:.3f} on speaker "
                         f"{speaker} ({json.loads(test_file.read_text())['n_rows']['test']} clips never "
                         "seen in training)"))
else:
    rows.append(("test", "none: the bundled sample is too small to hold a speaker out"))
rows += [
    ("report", str(Path(out) / "report.html")),
    ("prediction", f"{Path(clip).name}: true label {truth}, predicted {answer}{confidence}: "
                   f"{verdict}" + ("" if test is not None else " (a training clip: smoke run)")),
    ("time", f"{int(elapsed) // 60} min {int(elapsed) % 60:02d} s wall, {int(cpu) // 60} min "
             f"{int(cpu) % 60:02d} s CPU (load average {load} at the start)"),
]
width = max(len(k) for k, _ in rows)
print("\nquickstart: done\n" + "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows))
if full != "1":
    print("  next        bash scripts/quickstart.sh --full   # a neural model (tier1, 20 epochs)")
EOF
