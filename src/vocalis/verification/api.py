"""Score a trial list, calibrate a threshold, verify a pair: what ``vocalis sv`` and ``verify`` run.

- :func:`score_trials`: embeddings of every clip of a trial list (cached), cosine
  scores, an optional score normalisation with a cohort, EER, minDCF and the DET
  curve; writes ``scores.tsv`` (``label, enrol, test, score`` with a header),
  ``scores.json`` (the metrics) and ``scores.det.png``.
- :func:`score_embeddings`: the same from embeddings already computed (a mapping from
  each trial entry to its vector), for precomputed or in-memory embeddings.
- :func:`calibrate_threshold`: scores a development list and stores the threshold
  at the EER or at a false-accept rate with the model, as
  ``extras["verification"]`` of its checkpoint (:mod:`vocalis.checkpoint`,
  atomically), or, for ``ge2e`` (no checkpoint), in a verifier folder
  (``DIR/verification.json`` + ``DIR/cohort.npy``) that :func:`load_embedder` reads.
- :func:`verify_pair`: the score of two clips against the stored threshold.

The stored record: ``threshold``, ``at`` (``eer`` or ``far=0.01``), ``trials``
(the development list), ``eer`` and ``min_dcf`` on it, ``far`` / ``frr`` at the
threshold, ``norm`` and ``top_k``, ``n_target`` / ``n_nontarget``, ``embedder``,
``calibrated_at`` (UTC) and, for a normalised score, ``cohort``
(``{"source", "size", "embeddings"}``: the cohort's embeddings themselves, so
``verify`` needs nothing else).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vocalis.errors import ConfigError, DataError, ModelError
from vocalis.features.cache import FeatureCache
from vocalis.io import local_path
from vocalis.verification.embedders import (
    GE2E_SPEC,
    VERIFIER_FILE,
    SpeakerEmbedder,
    load_embedder,
)
from vocalis.verification.scoring import NORMS, cosine_scores, normalize_scores
from vocalis.verification.trials import TrialList, read_trials

logger = logging.getLogger(__name__)

__all__ = [
    "COHORT_FILE",
    "Decision",
    "ScoreResult",
    "calibrate_threshold",
    "parse_operating_point",
    "score_embeddings",
    "score_trials",
    "verify_pair",
]

#: Cohort embeddings of a verifier folder.
COHORT_FILE = "cohort.npy"


@dataclass
class ScoreResult:
    """Scores of a trial list and their metrics.

    Attributes:
        scores: (N,) final scores (normalised when a norm was asked for).
        labels: (N,) 1 target, 0 non-target.
        enrol: N enrolment paths.
        test: N test paths.
        metrics: ``eer``, ``eer_threshold``, ``min_dcf``, ``min_dcf_threshold`` and
            the settings (see :func:`score_trials`).
        written: paths of the files written.
        cohort: the cohort embeddings used (None without a norm).
    """

    scores: np.ndarray
    labels: np.ndarray
    enrol: tuple[str, ...]
    test: tuple[str, ...]
    metrics: dict[str, Any]
    written: list[str] = field(default_factory=list)
    cohort: np.ndarray | None = None


@dataclass
class Decision:
    """The verdict of :func:`verify_pair`.

    Attributes:
        score: the pair's score (normalised as at calibration).
        accept: ``score >= threshold``; None without a stored threshold.
        threshold: the stored threshold, or None.
        record: the stored calibration record (``at``, ``trials``, ``eer``, ...), or None.
        source: where the record was read from (checkpoint file or verifier folder).
    """

    score: float
    accept: bool | None
    threshold: float | None
    record: dict[str, Any] | None
    source: str


def _embedder(spec: str | os.PathLike | SpeakerEmbedder, device: str) -> SpeakerEmbedder:
    return spec if isinstance(spec, SpeakerEmbedder) else load_embedder(spec, device=device)


def _training_overlap(emb: SpeakerEmbedder, trials: TrialList) -> list[str]:
    """Trial speakers (from the list's record) the model was trained on; warns when any."""
    speakers = {str(s) for s in trials.meta.get("speakers") or ()}
    if emb.train_speakers is None or not speakers:
        return []
    seen, where = emb.train_speakers
    common = sorted(speakers & seen)
    if common:
        logger.warning(
            "WARNING: %d of the %d trial speakers were seen in training (%s: %s); these "
            "numbers are speaker-dependent, build the trials with --exclude-speakers-of",
            len(common),
            len(speakers),
            where,
            ", ".join(common[:8]) + (", ..." if len(common) > 8 else ""),
        )
    return common


def _cohort_paths(cohort: str | os.PathLike) -> tuple[list[str], set[str]]:
    from vocalis.data import read_manifest

    m = read_manifest(cohort, required=("path",))
    speakers = set(m.column("speaker")) if "speaker" in m.columns else set()
    return m.paths, speakers


def _embed_cohort(
    emb: SpeakerEmbedder,
    cohort: str | os.PathLike,
    trials: TrialList,
    cache: FeatureCache | None,
    batch_size: int,
    progress: bool,
) -> np.ndarray:
    """Cohort embeddings; refuses a cohort that shares clips or speakers with the trials."""
    paths, speakers = _cohort_paths(cohort)
    shared = set(paths) & set(trials.files())
    if shared:
        raise DataError(
            f"cohort {cohort} shares {len(shared)} clip(s) with the trials (e.g. "
            f"{sorted(shared)[0]}); the cohort must hold other speakers' clips"
        )
    trial_speakers = set(map(str, trials.meta.get("speakers") or ()))
    common = speakers & trial_speakers
    if common:
        raise DataError(
            f"cohort {cohort} shares {len(common)} speaker(s) with the trials "
            f"({', '.join(sorted(common)[:5])}); use a cohort of other speakers"
        )
    matrix, failed = emb.embed_files(paths, cache, batch_size, progress)
    keep = ~np.isnan(matrix).any(1) if matrix.size else np.zeros(len(paths), bool)
    if failed:
        logger.warning("cohort: %d unreadable clip(s) left out", len(failed))
    if not keep.any():
        raise DataError(f"cohort {cohort}: none of its {len(paths)} clips could be read")
    return matrix[keep]


def score_trials(
    embedder: str | os.PathLike | SpeakerEmbedder,
    trials: str | os.PathLike | TrialList,
    *,
    norm: str = "none",
    cohort: str | os.PathLike | None = None,
    top_k: int = 200,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    audio_root: str | os.PathLike | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = False,
) -> ScoreResult:
    """Score a trial list with cosine similarity (and a score normalisation).

    Args:
        embedder: a :func:`load_embedder` spec or a loaded :class:`SpeakerEmbedder`.
        trials: a trial list file (see :mod:`~vocalis.verification.trials`) or a
            :class:`TrialList`.
        norm: ``none``, ``z``, ``t``, ``s`` or ``as`` (see :mod:`~vocalis.verification.scoring`).
        cohort: manifest CSV of cohort clips (other speakers), needed by every norm.
        top_k: cohort clips per side for adaptive s-norm.
        p_target: target prior of the detection cost.
        c_miss: cost of a miss.
        c_fa: cost of a false alarm.
        out: scores TSV to write (with ``.json`` metrics and ``.det.png`` beside it).
        cache_dir: folder or URL of the per-clip embedding cache (a
            :class:`~vocalis.features.cache.FeatureCache`; default: ``embeddings/`` in
            the folder of ``out``; no cache when both are None).
        audio_root: folder relative trial paths resolve against.
        batch_size: clips per forward pass.
        device: torch device.
        progress: show progress bars.

    Returns:
        The scores and metrics; trials with an unreadable clip are left out (counted
        in ``metrics["skipped_trials"]``).

    Raises:
        ConfigError: an unknown norm, or a norm without a cohort.
        DataError: a cohort that shares clips or speakers with the trials; no
            target or no non-target trial left.
    """
    from vocalis.metrics.verification import detection_costs

    if norm not in NORMS:
        raise ConfigError(f"--norm {norm!r}: expected one of {', '.join(NORMS)}")
    if norm != "none" and cohort is None:
        raise ConfigError(f"--norm {norm} needs a cohort: pass --cohort COHORT.csv")
    detection_costs(np.array([1.0, 0.0]), np.array([1, 0]), p_target, c_miss, c_fa)  # check
    out = local_path(out, "--out") if out is not None else None
    tl = trials if isinstance(trials, TrialList) else read_trials(trials, audio_root)
    emb = _embedder(embedder, device)
    overlap = _training_overlap(emb, tl)
    if cache_dir is None and out is not None:
        cache_dir = Path(out).parent / "embeddings"
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    files = tl.files()
    matrix, failed = emb.embed_files(files, cache, batch_size, progress)
    unreadable = set(failed)
    cohort_emb = None
    if norm != "none":
        cohort_emb = _embed_cohort(emb, cohort, tl, cache, batch_size, progress)
    result = score_embeddings(
        tl,
        {p: matrix[i] for i, p in enumerate(files) if p not in unreadable},
        norm=norm,
        cohort=cohort_emb,
        top_k=top_k,
        p_target=p_target,
        c_miss=c_miss,
        c_fa=c_fa,
    )
    result.metrics.update(
        {
            "cohort": str(cohort) if cohort_emb is not None else None,
            "unreadable_files": failed,
            "embedder": emb.spec if emb.folder is None else emb.folder,
            "embedding_kind": emb.kind,
            "training_speakers_in_trials": overlap,
            "stored_threshold": _at_stored_threshold(emb, result, norm),
        }
    )
    if out is not None:
        result.written = _write_scores(out, result)
    return result


def score_embeddings(
    trials: TrialList,
    embeddings: Mapping[str, np.ndarray],
    *,
    norm: str = "none",
    cohort: np.ndarray | None = None,
    top_k: int = 200,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> ScoreResult:
    """Score trials from embeddings already computed (precomputed or in memory).

    This is the part of :func:`score_trials` after embedding.

    Args:
        trials: the trials; their ``enrol`` / ``test`` entries are keys of ``embeddings``.
        embeddings: one vector per clip (path, or whatever the trials name).
        norm: ``none``, ``z``, ``t``, ``s`` or ``as``.
        cohort: cohort embeddings (needed by every norm).
        top_k: cohort clips per side for ``as``.
        p_target: target prior of the detection cost.
        c_miss: cost of a miss.
        c_fa: cost of a false alarm.

    Returns:
        Scores and metrics; a trial with a clip missing from ``embeddings`` is left out
        (``metrics["skipped_trials"]``).

    Shape:
        embeddings: values (E,); cohort: (C, E).

    Raises:
        ConfigError: an unknown norm, or a norm without a cohort.
        DataError: no target or no non-target trial left.

    Example:
        >>> from vocalis.verification import TrialList
        >>> tl = TrialList(np.array([1, 0]), ("a", "a"), ("b", "c"))
        >>> vec = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 0.1]), "c": np.array([0.0, 1.0])}
        >>> score_embeddings(tl, vec).metrics["eer"]
        0.0
    """
    from vocalis.metrics.verification import compute_eer, compute_min_dcf

    if norm not in NORMS:
        raise ConfigError(f"--norm {norm!r}: expected one of {', '.join(NORMS)}")
    ok = np.array(
        [
            a in embeddings and b in embeddings
            for a, b in zip(trials.enrol, trials.test, strict=True)
        ]
    )
    if not ok.all():
        logger.warning(
            "%d of %d trials left out: a clip has no embedding", int((~ok).sum()), len(trials)
        )
    enrol = tuple(p for p, k in zip(trials.enrol, ok, strict=True) if k)
    test = tuple(p for p, k in zip(trials.test, ok, strict=True) if k)
    labels = trials.labels[ok].astype(int)
    if not enrol:
        raise DataError(f"{trials.source or 'trials'}: no trial has embeddings for both clips")
    e = np.stack([np.asarray(embeddings[p], dtype=np.float64) for p in enrol])
    t = np.stack([np.asarray(embeddings[p], dtype=np.float64) for p in test])
    idx = np.arange(len(enrol))
    raw = cosine_scores(e, t, idx, idx)
    scores = raw if norm == "none" else normalize_scores(raw, e, t, norm, cohort, top_k)
    eer, eer_thr = compute_eer(scores, labels)
    dcf, dcf_thr = compute_min_dcf(scores, labels, p_target, c_miss, c_fa)
    metrics: dict[str, Any] = {
        "eer": eer,
        "eer_threshold": eer_thr,
        "min_dcf": dcf,
        "min_dcf_threshold": dcf_thr,
        "p_target": p_target,
        "c_miss": c_miss,
        "c_fa": c_fa,
        "norm": norm,
        "top_k": top_k if norm == "as" else None,
        "cohort_size": None if cohort is None or norm == "none" else int(cohort.shape[0]),
        "n_trials": int(labels.size),
        "n_target": int(labels.sum()),
        "n_nontarget": int((labels == 0).sum()),
        "skipped_trials": int((~ok).sum()),
        "trials": trials.source or "(in memory)",
        "embedding_dim": int(e.shape[1]),
    }
    return ScoreResult(
        scores, labels, enrol, test, metrics, cohort=None if norm == "none" else cohort
    )


def _at_stored_threshold(
    emb: SpeakerEmbedder, result: ScoreResult, norm: str
) -> dict[str, Any] | None:
    """False accepts / rejects at the model's calibrated threshold (same norm only)."""
    rec = emb.verification
    if not rec or "threshold" not in rec or str(rec.get("norm") or "none") != norm:
        return None
    thr = float(rec["threshold"])
    tgt = result.scores[result.labels == 1]
    non = result.scores[result.labels == 0]
    return {
        "threshold": thr,
        "at": rec.get("at"),
        "calibrated_on": rec.get("trials"),
        "far": float(np.mean(non >= thr)),
        "frr": float(np.mean(tgt < thr)),
    }


def _write_scores(out: str | os.PathLike, result: ScoreResult) -> list[str]:
    from vocalis.io import atomic_open, write_json
    from vocalis.metrics.verification import error_rates
    from vocalis.verification.det import plot_det

    out = local_path(out, "--out")
    with atomic_open(out, "w") as fh:
        fh.write("label\tenrol\ttest\tscore\n")
        for lab, a, b, s in zip(
            result.labels.tolist(), result.enrol, result.test, result.scores.tolist(), strict=True
        ):
            fh.write(f"{lab}\t{a}\t{b}\t{s:.6f}\n")
    meta = out.with_suffix(".json")
    write_json(meta, {"scores": str(out), **result.metrics})
    fnr, fpr, thr = error_rates(result.scores, result.labels)
    m = result.metrics
    i_dcf = int(np.argmin(np.abs(thr - m["min_dcf_threshold"])))
    det = out.with_name(out.stem + ".det.png")
    plot_det(
        [(f"{m['norm']} (EER {100 * m['eer']:.2f} %)", fpr, fnr)],
        det,
        points=[
            (f"EER {100 * m['eer']:.2f} %", m["eer"], m["eer"]),
            (f"minDCF {m['min_dcf']:.3f} (p={m['p_target']:g})", fpr[i_dcf], fnr[i_dcf]),
        ],
        title=f"DET: {Path(str(m['trials'])).name}, {m['n_target']} target / "
        f"{m['n_nontarget']} non-target",
    )
    return [str(out), str(meta), str(det)]


def parse_operating_point(at: str) -> tuple[str, float | None]:
    """``eer`` -> ``("eer", None)``; ``far=0.01`` -> ``("far", 0.01)``.

    Raises:
        ConfigError: anything else, or a rate outside [0, 1).

    Example:
        >>> parse_operating_point("eer"), parse_operating_point("far=0.01")
        (('eer', None), ('far', 0.01))
    """
    text = str(at).strip().lower()
    if text == "eer":
        return "eer", None
    if text.startswith("far="):
        try:
            rate = float(text[4:])
        except ValueError:
            rate = -1.0
        if 0.0 <= rate < 1.0:
            return "far", rate
    raise ConfigError(
        f"--at {at!r}: expected eer or far=RATE with a false-accept rate in [0, 1), e.g. far=0.01"
    )


def calibrate_threshold(
    embedder: str | os.PathLike | SpeakerEmbedder,
    trials: str | os.PathLike | TrialList,
    *,
    at: str = "eer",
    norm: str = "none",
    cohort: str | os.PathLike | None = None,
    top_k: int = 200,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    audio_root: str | os.PathLike | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[dict[str, Any], str]:
    """Pick a threshold on a development trial list and store it with the model.

    Args:
        embedder: a checkpoint, ``ge2e`` or a verifier folder (see :func:`load_embedder`).
        trials: the development trial list (speakers disjoint from the test list's).
        at: ``eer`` (the EER threshold) or ``far=RATE`` (the lowest threshold whose
            false-accept rate on the list is at most RATE).
        norm: score normalisation (stored; ``verify`` applies the same).
        cohort: cohort manifest for ``norm``.
        top_k: cohort clips per side for ``as``.
        out: a folder to write a verifier folder to (required for ``ge2e``); default:
            the checkpoint itself (or the verifier folder it came from).
        cache_dir: embedding cache folder (default: ``embeddings/`` beside the record).
        audio_root: folder relative trial paths resolve against.
        batch_size: clips per forward pass.
        device: torch device.
        progress: show progress bars.

    Returns:
        ``(record, where)``: the stored record (without the cohort embeddings) and
        the file it was written to.

    Raises:
        ConfigError: a bad ``at``, or ``ge2e`` without ``out``.
        DataError: see :func:`score_trials`.
    """
    from vocalis.metrics.verification import threshold_at_far

    point, rate = parse_operating_point(at)
    out = local_path(out, "--out") if out is not None else None
    emb = _embedder(embedder, device)
    if out is None and emb.checkpoint is None and emb.folder is None:
        raise ConfigError(
            f"{emb.spec}: has no checkpoint to store a threshold in; pass --out DIR to write "
            "a verifier folder (DIR/verification.json) that verify --checkpoint DIR reads"
        )
    target = Path(out) if out is not None else Path(emb.folder or str(emb.checkpoint))
    if cache_dir is None:
        cache_dir = (target if target.suffix == "" else target.parent) / "embeddings"
    res = score_trials(
        emb,
        trials,
        norm=norm,
        cohort=cohort,
        top_k=top_k,
        cache_dir=cache_dir,
        audio_root=audio_root,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    m = res.metrics
    tgt, non = res.scores[res.labels == 1], res.scores[res.labels == 0]
    if point == "eer":
        threshold = m["eer_threshold"]
    else:
        threshold, _, _ = threshold_at_far(res.scores, res.labels, rate)
        if rate and m["n_nontarget"] * rate < 10:
            logger.warning(
                "%s: %d non-target trials, so a false-accept rate of %g rests on %d of them; "
                "the threshold is imprecise: build a larger development list",
                m["trials"],
                m["n_nontarget"],
                rate,
                int(m["n_nontarget"] * rate),
            )
    record: dict[str, Any] = {
        "threshold": float(threshold),
        "at": "eer" if point == "eer" else f"far={rate:g}",
        "trials": str(Path(str(m["trials"])).resolve()) if m["trials"] else "",
        "eer": m["eer"],
        "min_dcf": m["min_dcf"],
        "p_target": m["p_target"],
        "far": float(np.mean(non >= threshold)),
        "frr": float(np.mean(tgt < threshold)),
        "norm": norm,
        "top_k": m["top_k"],
        "n_target": m["n_target"],
        "n_nontarget": m["n_nontarget"],
        "embedder": str(emb.spec),
        "calibrated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    cohort_emb = res.cohort
    if cohort_emb is not None:
        record["cohort"] = {"source": str(cohort), "size": int(cohort_emb.shape[0])}
    where = _store(emb, record, cohort_emb, out)
    return record, where


def _store(
    emb: SpeakerEmbedder, record: dict[str, Any], cohort: np.ndarray | None, out: Any
) -> str:
    """Write the record into the checkpoint (atomically) or a verifier folder."""
    import dataclasses

    import torch

    from vocalis.io import write_json

    if out is None and emb.checkpoint is not None and emb.folder is None:
        from vocalis.checkpoint import load_checkpoint, save_checkpoint

        ckpt = load_checkpoint(emb.checkpoint)
        extras = dict(ckpt.training.get("extras") or {})
        stored = dict(record)
        if cohort is not None:
            stored["cohort"] = {**record["cohort"], "embeddings": torch.from_numpy(cohort.copy())}
        extras["verification"] = stored
        save_checkpoint(
            emb.checkpoint, dataclasses.replace(ckpt, training={**ckpt.training, "extras": extras})
        )
        return str(emb.checkpoint)
    folder = local_path(out, "--out") if out is not None else Path(str(emb.folder))
    from vocalis.checkpoint import MODEL_FILE

    if (folder / MODEL_FILE).exists():
        raise ConfigError(
            f"--out {folder}: holds a {MODEL_FILE}; give a new folder for the verifier record"
        )
    inner = GE2E_SPEC if emb.spec == GE2E_SPEC else str(Path(str(emb.checkpoint)).resolve())
    if cohort is not None:
        import io

        from vocalis.io import atomic_open

        buf = io.BytesIO()
        np.save(buf, cohort.astype(np.float32))
        with atomic_open(folder / COHORT_FILE, "wb") as fh:
            fh.write(buf.getvalue())
        record = {**record, "cohort": {**record["cohort"], "file": COHORT_FILE}}
    write_json(folder / VERIFIER_FILE, {"embedder": inner, "verification": record})
    return str(folder / VERIFIER_FILE)


def _stored_cohort(emb: SpeakerEmbedder, record: dict[str, Any]) -> np.ndarray:
    info = record.get("cohort") or {}
    data = info.get("embeddings")
    if data is not None:
        return np.asarray(data.numpy() if hasattr(data, "numpy") else data, dtype=np.float64)
    if emb.folder is not None and info.get("file"):
        path = Path(emb.folder) / str(info["file"])
        if path.is_file():
            return np.load(path).astype(np.float64)
    raise ModelError(
        f"{emb.folder or emb.checkpoint}: the threshold was calibrated with norm "
        f"{record.get('norm')} but its cohort embeddings are missing; calibrate again"
    )


def verify_pair(
    embedder: str | os.PathLike | SpeakerEmbedder,
    enrol: str | os.PathLike,
    test: str | os.PathLike,
    *,
    device: str = "cpu",
) -> Decision:
    """Score two clips and decide with the stored threshold.

    Args:
        embedder: a checkpoint or verifier folder with a calibrated threshold (see
            :func:`calibrate_threshold`); any other spec gives the score only.
        enrol: the enrolment clip.
        test: the test clip.
        device: torch device.

    Returns:
        The decision (``accept`` and ``threshold`` None when nothing is stored).

    Raises:
        AudioError: a clip cannot be read.
        ModelError: a stored norm whose cohort is missing.
    """
    from vocalis.inference.predictor import pad_batch

    emb = _embedder(embedder, device)
    wav, lengths = pad_batch([emb.load(str(enrol)), emb.load(str(test))])
    vecs = emb.embed(wav, lengths).numpy().astype(np.float64)
    raw = cosine_scores(vecs, vecs, np.array([0]), np.array([1]))
    record = emb.verification
    source = emb.folder or emb.checkpoint or emb.spec
    if not record or "threshold" not in record:
        return Decision(float(raw[0]), None, None, None, str(source))
    norm = str(record.get("norm") or "none")
    score = raw
    if norm != "none":
        cohort = _stored_cohort(emb, record)
        top_k = record.get("top_k") or 200
        score = normalize_scores(raw, vecs[:1], vecs[1:], norm, cohort, int(top_k))
    threshold = float(record["threshold"])
    return Decision(float(score[0]), bool(score[0] >= threshold), threshold, record, str(source))
