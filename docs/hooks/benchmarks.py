"""MkDocs hook: the benchmark tables of ``docs/benchmarks.md``, read from ``bench/results/*.json``.

Each marker ``<!-- bench:NAME -->`` on that page is replaced by the table that
:data:`TABLES` builds from the committed JSON, so the page shows exactly the numbers the
benchmark scripts wrote. A missing file or key fails the build with its name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

Row = list[str]


def _table(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _f3(x: float) -> str:
    return f"{x:.3f}"


def emodb_loso(results: Path) -> str:
    """Quality: EmoDB leave-one-speaker-out, Vocalis recipes and the openSMILE peers."""
    d = _load(results / "emodb_loso.json")
    systems = [
        ("vocalis", "Vocalis functionals ensemble (GE2E stats + ComParE, linear SVMs)"),
        ("compare_svm", "openSMILE ComParE_2016 + linear SVM (peer)"),
        ("egemaps_svm", "openSMILE eGeMAPSv02 + linear SVM (peer)"),
    ]
    rows = []
    for protocol in ("online", "speaker_norm"):
        for key, name in systems:
            r = d[key][protocol]
            rows.append(
                [
                    name,
                    f"`{protocol}`",
                    f"**{_f3(r['pooled_uar'])}**" if key == "vocalis" else _f3(r["pooled_uar"]),
                    _f3(r["accuracy"]),
                    f"{_f3(r['fold_uar_mean'])} ± {_f3(r['fold_uar_std'])}",
                    f"{r['seconds']:.0f}",
                ]
            )
    for path in sorted(results.glob("emodb_*loso*.json")):
        n = _load(path)
        if "recipe" not in n or "pooled" not in n:  # not a cv summary of one recipe
            continue
        partial = (
            f"; partial: {n['n_finished']} of {n['n_folds']} folds" if n.get("partial") else ""
        )
        rows.append(
            [
                f"Vocalis `{Path(n['recipe']).stem}` (`{path.name}`{partial})",
                f"`{n['normalization']['protocol']}`",
                _f3(n["pooled"]["uar"]),
                _f3(n["pooled"]["accuracy"]),
                f"{_f3(n['fold_mean']['uar'])} ± {_f3(n['fold_std']['uar'])}",
                f"{n['seconds']:.0f}",
            ]
        )
    header = ["system", "protocol", "pooled UAR", "accuracy", "fold UAR mean ± std", "seconds"]
    return _table(header, rows)


def features(results: Path) -> str:
    """Speed of tier 0 and the feature extractors against librosa, in x real time."""
    d = _load(results / "features.json")
    st = d["stages"]
    names = {
        "decode": "decode",
        "resample_44k1_to_16k": "resample 44.1 -> 16 kHz",
        "denoise_spectral": "spectral denoise",
        "vad": "VAD (Silero)",
        "mfcc": "MFCC-40",
        "fbank": "fbank-80",
        "pitch": "pitch (YIN)",
    }
    peers = {"mfcc": "librosa_mfcc", "fbank": "librosa_fbank", "pitch": "librosa_yin"}
    rows = []
    for key, name in names.items():
        peer = peers.get(key)
        ratio = f"{st[key]['x_realtime'] / st[peer]['x_realtime']:.1f}x" if peer else ""
        rows.append(
            [
                name,
                f"{st[key]['x_realtime']:,.0f}x",
                f"{st[peer]['x_realtime']:,.0f}x" if peer else "",
                ratio,
            ]
        )
    return _table(["stage (1 thread)", "Vocalis", "librosa", "Vocalis / librosa"], rows)


def cache(results: Path) -> str:
    """``vocalis features`` with an empty, then a warm cache."""
    d = _load(results / "cache.json")
    rows = [
        [
            str(d["files"]),
            d["features"],
            f"{d['cold_s']:.2f} s",
            f"{d['warm_s']:.3f} s",
            f"{d['speedup']:.0f}x",
        ]
    ]
    return _table(["files", "features", "cold", "cached", "speed-up"], rows)


def train_speed(results: Path) -> str:
    """Training throughput per model (batches of 16 two-second crops)."""
    d = _load(results / "train_speed.json")
    rows = [
        [
            f"`{name}`",
            f"{r['params'] / 1e6:.1f} M",
            f"{r['x_realtime']:.1f}x",
            f"{r['step_s']:.2f} s",
            f"{r['peak_rss_mb']:.0f} MB",
        ]
        for name, r in d.items()
        if isinstance(r, dict) and "params" in r and not name.endswith("_utterances")
    ]
    return _table(["model", "parameters", "x real time", "seconds per step", "peak RSS"], rows)


def inference(results: Path) -> str:
    """Latency on one clip: eager PyTorch, TorchScript and ONNX Runtime, one thread."""
    d = _load(results / "inference.json")
    rows = []
    for model in ("tier1", "ecapa_c512"):
        for backend in ("eager", "torchscript", "onnx"):
            r = d[model][f"{backend}_1thread"]
            rows.append([f"`{model}`", backend, f"{r['p50_ms']:.1f} ms", f"{r['rtf']:.4f}"])
    header = [f"model ({d['clip']['seconds']:g} s clip)", "backend", "p50 latency", "RTF"]
    return _table(header, rows)


def speaker(results: Path) -> str:
    """Speaker verification on held-out EmoDB + BAVED speakers (``bench/speaker.py``)."""
    d = _load(results / "speaker.json")
    a = d["ge2e_zero_shot"]

    def pm(x: dict, scale: float = 100.0, digits: int = 2) -> str:
        return f"{scale * x['mean']:.{digits}f} ± {scale * x['std']:.{digits}f}"

    rows = [
        [
            "GE2E zero-shot (anchor)",
            f"{100 * a['none']['eer']:.2f}",
            _f3(a["none"]["min_dcf"]),
            f"{100 * a['s']['eer']:.2f}",
            _f3(a["s"]["min_dcf"]),
            "–",
            "0",
            "–",
        ]
    ]
    for name, r in d["systems"].items():
        s = r["summary"]
        rows.append(
            [
                f"`{name}`",
                pm(s["none_eer"]),
                pm(s["none_min_dcf"], 1.0, 3),
                pm(s["s_eer"]),
                pm(s["s_min_dcf"], 1.0, 3),
                pm(s["val_acc"], 1.0, 3),
                f"{s['train_seconds']['mean']:.0f}",
                str(s["n_seeds"]),
            ]
        )
    header = ["system", "EER %", "minDCF", "EER % (s-norm)", "minDCF (s-norm)",
              "closed-set acc (val)", "train s", "seeds"]  # fmt: skip
    return _table(header, rows)


def augment(results: Path) -> str:
    """Augmentation: each transform in x real time, then training time augmented / not."""
    d = _load(results / "augment.json")
    t = d["transforms"]
    rows = [
        [f"`{name}`", f"{r['x_realtime']:,.0f}x", f"{r['x_realtime_cpu']:,.0f}x", r["what"]]
        for name, r in t["rows"].items()
    ]
    head = ["transform (p = 1, 1 thread)", "x real time (wall)", "x real time (CPU)", "settings"]
    tr = d["training"]
    runs = [
        [
            f"`{b.get('overrides', name)}`",
            f"{b['wall_s']:.1f} s",
            f"{b['cpu_s']:.1f} s",
            f"{b['wall_ratio']:.2f}",
            f"{b['cpu_ratio']:.2f}",
        ]
        for name, b in tr["best"].items()
    ]
    return (
        _table(head, rows)
        + f"\n\nTraining {tr['model']}, {tr['epochs']} epoch(s) on {tr['source']}, "
        f"fastest of {tr['repeats']} interleaved rounds:\n\n"
        + _table(["setting", "wall", "CPU", "wall ratio", "CPU ratio"], runs)
    )


def ssl(results: Path) -> str:
    """Fine-tuning a wav2vec 2.0 base-sized encoder (model=ssl), with and without checkpointing."""
    d = _load(results / "ssl.json")
    rows = []
    for name, r in d["runs"].items():
        rows.append(
            [
                name.replace("_", " "),
                f"{r['utt_per_cpu_s']:.2f}",
                f"{r['utt_per_s']:.2f}",
                f"{r['step_wall_s']:.1f} s",
                f"{r['step_cpu_s']:.1f} s",
                f"{r['peak_rss_mb']:.0f} MB",
            ]
        )
    header = [f"setting ({d['device']}, batch 8 x 3 s)", "utt per CPU s", "utt/s (wall)"]
    header += ["step (wall)", "step (CPU)"]
    return _table([*header, "peak RSS"], rows)


def reliability(results: Path) -> str:
    """Reliability: bad files, kill -9 and resume, the hostile service, SIGTERM, scale-out."""
    d = _load(results / "reliability.json")
    rows = [
        [f"bad files: {r['verb']}", f"tried {r['tried']}, broken {r['broken']}, reported "
         f"{r['reported']}, lost {r['lost']}, false reports {r['false_reports']}"]
        for r in d["files"]
    ]  # fmt: skip
    rows += [
        [f"kill -9: {r['verb']}", f"{r['kill_points']} kill points ({r['killed_during_write']} "
         f"during a write); final state equal {r['final_state_equal']}/{r['chains']} chains; "
         f"orphans {r['orphans']}; .part left {r['parts_left']}"]
        for r in d["kills_summary"]
    ]  # fmt: skip
    s, mem = d["service"], d["service"]["memory"]
    rows += [
        ["service: hostile requests", f"{s['hostile_sent']} of {len(s['hostile'])} kinds, "
         f"5xx {s['5xx_total']}"],
        ["service: valid clips under that load", f"p95 {s['valid']['p95_s']} s, "
         f"answers {s['valid']['status']}"],
        ["service: peak RSS", f"{mem['peak_mb']} MB (bound {mem['bound_mb']} MB)"],
        ["service: schema fuzz", f"{s['schema_fuzz']['cases']} cases, "
         f"{s['schema_fuzz']['failures']} failures"],
        ["service: 30-min silent FLAC", f"{s['silent_flac_30min']['status']}, RSS "
         f"+{s['silent_flac_30min']['rss_increase_mb']} MB"],
    ]  # fmt: skip
    rows += [[f"SIGTERM: {r['verb']}", f"{r['stop_s']} s, exit {r['exit']}"] for r in d["sigterm"]]
    for name, r in d["scaleout"]["rows"].items():
        rows.append(
            [
                f"EmoDB LOSO: {name}",
                f"{r['wall_s']} s wall, pooled UAR "
                f"{_f3(r['pooled_uar'])}, cv_results equal: {r['cv_results_equal_local']}",
            ]
        )
    return _table(["scenario", "result"], rows)


TABLES: dict[str, Callable[[Path], str]] = {
    "emodb_loso": emodb_loso,
    "features": features,
    "cache": cache,
    "train_speed": train_speed,
    "inference": inference,
    "speaker": speaker,
    "augment": augment,
    "ssl": ssl,
    "reliability": reliability,
}


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"benchmarks page: {path} is missing (run the benchmark)")
    return json.loads(path.read_text(encoding="utf-8"))


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace every ``<!-- bench:NAME -->`` marker with its table."""
    results = Path(config["config_file_path"]).parent / "bench" / "results"

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise KeyError(f"benchmarks page: unknown table '{name}' (known: {', '.join(TABLES)})")
        return TABLES[name](results)

    return re.sub(r"<!-- bench:(\w+) -->", fill, markdown)
