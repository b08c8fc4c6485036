"""Speaker verification: trial lists, embeddings, cosine scoring, score norms, thresholds.

Sits above :mod:`vocalis.inference` (which rebuilds a checkpoint's embedder) and
:mod:`vocalis.metrics` (EER, minDCF); only ``vocalis.cli`` imports it.

- :mod:`~vocalis.verification.trials`: :func:`build_trials` (target / non-target
  pairs among a manifest's speakers, refusing training speakers),
  :func:`read_trials` / :func:`write_trials` (Kaldi-style TSV);
- :mod:`~vocalis.verification.scoring`: cosine scores and z-, t-, s- and adaptive
  s-norm against a cohort (pure numpy);
- :mod:`~vocalis.verification.embedders`: :func:`load_embedder` (a checkpoint, or
  ``ge2e``: the pretrained GE2E d-vector, zero-shot) and per-clip embedding caches;
- :mod:`~vocalis.verification.api`: :func:`score_trials`, :func:`calibrate_threshold`
  and :func:`verify_pair`, what ``vocalis sv score|calibrate`` and ``vocalis verify`` run;
- :mod:`~vocalis.verification.det`: the DET curve plot.

Names are imported lazily, so ``import vocalis.verification`` stays cheap.
"""

from __future__ import annotations

from vocalis.lazy import lazy_exports

_EXPORTS = {
    "TrialList": "vocalis.verification.trials",
    "build_trials": "vocalis.verification.trials",
    "read_trials": "vocalis.verification.trials",
    "write_trials": "vocalis.verification.trials",
    "training_speakers": "vocalis.verification.trials",
    "NORMS": "vocalis.verification.scoring",
    "cosine_scores": "vocalis.verification.scoring",
    "normalize_scores": "vocalis.verification.scoring",
    "cohort_stats": "vocalis.verification.scoring",
    "SpeakerEmbedder": "vocalis.verification.embedders",
    "load_embedder": "vocalis.verification.embedders",
    "score_trials": "vocalis.verification.api",
    "score_embeddings": "vocalis.verification.api",
    "calibrate_threshold": "vocalis.verification.api",
    "verify_pair": "vocalis.verification.api",
    "ScoreResult": "vocalis.verification.api",
    "Decision": "vocalis.verification.api",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
