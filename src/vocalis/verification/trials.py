"""Trial lists: target and non-target pairs of clips among a manifest's speakers.

A trial list is a TSV file, one trial per line, three tab-separated fields and no
header, the Kaldi / VoxCeleb layout::

    1	/data/emodb/wav/03a01Fa.wav	/data/emodb/wav/03a02Nc.wav
    0	/data/emodb/wav/03a01Fa.wav	/data/emodb/wav/08b03Tc.wav

``label`` is ``1`` for a target trial (same speaker), ``0`` for a non-target
trial (``target`` / ``nontarget`` are read too); ``enrol`` and ``test`` are
audio paths. A relative path is resolved against ``audio_root`` when given, else
against the trial file's folder. :func:`build_trials` writes absolute paths (as the
manifest resolves them) and a sidecar ``<name>.json`` that records how the list
was made (manifest, seed, speakers, counts).

Trials are built speaker by speaker, in sorted speaker order, with one
``numpy.random.Generator`` seeded from ``seed``, so a list is reproducible:

- target: up to ``per_speaker`` distinct unordered pairs of the speaker's clips,
  drawn without replacement (all of them when there are fewer);
- non-target: ``per_speaker`` pairs (one of the speaker's clips, one clip of
  another speaker), the other speakers taken in turn from a shuffled order so
  every impostor appears about equally often, whatever their clip counts; a pair
  is never repeated (also not reversed), and a speaker is never paired with
  itself as a non-target.

Evaluation speakers must be disjoint from training: :func:`build_trials` refuses
speakers listed in ``exclude`` (from :func:`training_speakers`) unless told to
drop them or to allow the overlap.

Example:
    >>> from vocalis.data import Manifest
    >>> m = Manifest([{"path": f"/a/{s}{i}.wav", "id": f"{s}{i}", "label": "x", "speaker": s}
    ...               for s in "ab" for i in range(3)])
    >>> trials = build_trials(m, per_speaker=2, seed=0)
    >>> trials.n_target, trials.n_nontarget
    (4, 4)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vocalis.errors import ConfigError, DataError

if TYPE_CHECKING:
    from vocalis.checkpoint import Checkpoint
    from vocalis.data import Manifest

__all__ = [
    "OVERLAP_MODES",
    "TrialList",
    "build_trials",
    "meta_path",
    "read_trials",
    "recorded_speakers",
    "training_speakers",
    "write_trials",
]

#: What :func:`build_trials` does with speakers seen in training.
OVERLAP_MODES = ("refuse", "drop", "allow")

_LABELS = {"1": 1, "0": 0, "target": 1, "nontarget": 0, "non-target": 0, "tgt": 1, "imp": 0}


@dataclass(frozen=True)
class TrialList:
    """Verification trials: a label and two audio paths each.

    Attributes:
        labels: (N,) 1 for target, 0 for non-target trials.
        enrol: N enrolment paths.
        test: N test paths.
        source: the file read from (empty when built in memory).
        meta: how the list was built (see :func:`build_trials`), when known.
    """

    labels: np.ndarray
    enrol: tuple[str, ...]
    test: tuple[str, ...]
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.enrol)

    @property
    def n_target(self) -> int:
        """Number of target trials."""
        return int(np.sum(self.labels == 1))

    @property
    def n_nontarget(self) -> int:
        """Number of non-target trials."""
        return int(np.sum(self.labels == 0))

    def files(self) -> list[str]:
        """Every distinct path of the list, in order of first appearance."""
        return list(
            dict.fromkeys(p for pair in zip(self.enrol, self.test, strict=True) for p in pair)
        )


def meta_path(path: str | os.PathLike) -> Path:
    """The sidecar JSON of a trial list: ``trials.tsv`` -> ``trials.json``."""
    return Path(path).with_suffix(".json")


def build_trials(
    manifest: Manifest | str | os.PathLike,
    *,
    per_speaker: int = 50,
    seed: int = 0,
    exclude: Iterable[str] = (),
    overlap: Literal["refuse", "drop", "allow"] = "refuse",
    exclude_source: str = "",
) -> TrialList:
    """Target and non-target trials among the speakers of ``manifest``.

    Args:
        manifest: a :class:`~vocalis.data.Manifest` or a manifest CSV with a
            ``speaker`` column.
        per_speaker: target trials (at most) and non-target trials per speaker.
        seed: seed of the one generator that draws every pair.
        exclude: speakers seen in training (see :func:`training_speakers`).
        overlap: what to do with manifest speakers in ``exclude``: ``refuse``
            (raise), ``drop`` (leave their clips out) or ``allow`` (keep them: the
            numbers are then not speaker-independent).
        exclude_source: where ``exclude`` came from, for messages and the record.

    Returns:
        The trials, target trials of each speaker first, then its non-target ones.

    Raises:
        DataError: no speaker column, training speakers in the manifest (with
            ``overlap="refuse"``), fewer than 2 speakers, or no speaker with 2 clips.
        ConfigError: ``per_speaker`` < 1 or an unknown ``overlap``.
    """
    from vocalis.data import Manifest, read_manifest

    if per_speaker < 1:
        raise ConfigError(f"--per-speaker {per_speaker}: expected a positive number of trials")
    if overlap not in OVERLAP_MODES:
        raise ConfigError(f"overlap={overlap!r}: expected one of {', '.join(OVERLAP_MODES)}")
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, required=("path", "speaker"))
    speakers = manifest.speakers  # raises a one-line DataError without the column
    paths = manifest.paths
    source = str(manifest.source or "manifest")
    seen = {str(s) for s in exclude}
    clips: dict[str, list[str]] = {}
    for spk, path in zip(speakers, paths, strict=True):
        clips.setdefault(spk, []).append(path)
    overlapping = sorted(set(clips) & seen)
    if overlapping and overlap == "refuse":
        shown = ", ".join(overlapping[:8]) + (", ..." if len(overlapping) > 8 else "")
        raise DataError(
            f"{source}: {len(overlapping)} of its {len(clips)} speakers were seen in training"
            f"{f' ({exclude_source})' if exclude_source else ''}: {shown}; trials must use "
            "held-out speakers: pass a manifest of other speakers, --drop-seen to leave them "
            "out, or --allow-overlap for (speaker-dependent) numbers"
        )
    if overlap == "drop":
        clips = {s: c for s, c in clips.items() if s not in seen}
    names = sorted(clips)
    if len(names) < 2:
        raise DataError(
            f"{source}: trials need at least 2 speakers, got {len(names)}"
            f"{' after dropping the training speakers' if overlap == 'drop' else ''}"
        )
    if not any(len(clips[s]) >= 2 for s in names):
        raise DataError(f"{source}: no speaker has 2 clips, so there is no target trial")
    rng = np.random.default_rng(seed)
    labels: list[int] = []
    enrol: list[str] = []
    test: list[str] = []
    used: set[frozenset[str]] = set()
    for spk in names:
        own = clips[spk]
        for a, b in _target_pairs(len(own), per_speaker, rng):
            labels.append(1)
            enrol.append(own[a])
            test.append(own[b])
        others = [s for s in names if s != spk]
        for a, b in _nontarget_pairs(own, others, clips, per_speaker, rng, used):
            labels.append(0)
            enrol.append(a)
            test.append(b)
    meta = {
        "manifest": source,
        "per_speaker": per_speaker,
        "seed": seed,
        "speakers": names,
        "n_speakers": len(names),
        "n_clips": sum(len(clips[s]) for s in names),
        "n_target": labels.count(1),
        "n_nontarget": labels.count(0),
        "overlap": overlap,
        "excluded_from": exclude_source,
        "overlapping_speakers": overlapping,
    }
    return TrialList(np.array(labels, dtype=np.int8), tuple(enrol), tuple(test), "", meta)


def _target_pairs(n: int, k: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``k`` distinct unordered index pairs ``(i < j)`` of ``n`` items."""
    if n < 2:
        return []
    i, j = np.triu_indices(n, k=1)
    pick = rng.choice(i.size, size=min(k, i.size), replace=False)
    return [(int(i[p]), int(j[p])) for p in np.sort(pick)]


def _nontarget_pairs(
    own: Sequence[str],
    others: Sequence[str],
    clips: dict[str, list[str]],
    k: int,
    rng: np.random.Generator,
    used: set[frozenset[str]],
) -> list[tuple[str, str]]:
    """``k`` pairs (own clip, another speaker's clip), impostors in turn, no repeats.

    Stops early only when every pair with every other speaker is used.
    """
    order = [others[i] for i in rng.permutation(len(others))]
    out: list[tuple[str, str]] = []
    turn = 0
    while len(out) < k and order:
        other = order[turn % len(order)]
        pair = _fresh_pair(own, clips[other], rng, used)
        if pair is None:  # this impostor is exhausted: drop it from the rotation
            order.remove(other)
            continue
        turn += 1
        used.add(frozenset(pair))
        out.append(pair)
    return out


def _fresh_pair(
    own: Sequence[str], theirs: Sequence[str], rng: np.random.Generator, used: set
) -> tuple[str, str] | None:
    """A random (own, theirs) pair not in ``used``; None when all are used."""
    for _ in range(20):
        a = own[int(rng.integers(len(own)))]
        b = theirs[int(rng.integers(len(theirs)))]
        if frozenset((a, b)) not in used:
            return a, b
    free = [(a, b) for a in own for b in theirs if frozenset((a, b)) not in used]
    return free[int(rng.integers(len(free)))] if free else None


def write_trials(path: str | os.PathLike, trials: TrialList) -> None:
    """Write ``trials`` as a TSV (atomically) and, when known, its sidecar JSON.

    Raises:
        DataError: a path contains a tab or a newline (the TSV could not hold it).
    """
    from vocalis.io import atomic_open, write_json

    lines = []
    for label, a, b in zip(trials.labels.tolist(), trials.enrol, trials.test, strict=True):
        for p in (a, b):
            if "\t" in p or "\n" in p:
                raise DataError(f"{p!r}: a trial path cannot contain a tab or a newline")
        lines.append(f"{int(label)}\t{a}\t{b}\n")
    with atomic_open(path, "w") as fh:
        fh.writelines(lines)
    if trials.meta:
        write_json(meta_path(path), {"trials": str(path), **trials.meta})


def read_trials(path: str | os.PathLike, audio_root: str | os.PathLike | None = None) -> TrialList:
    """Read a trial list (see the module docstring for the format).

    Args:
        path: the TSV file (whitespace-separated fields are read too).
        audio_root: folder relative paths are resolved against (default: the file's folder).

    Returns:
        The trials, with ``meta`` from the sidecar JSON when there is one.

    Raises:
        DataError: the file is missing or empty, a line has not 3 fields, or a label
            is not 1/0/target/nontarget.
    """
    import json

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        raise DataError(
            f"{path}: trial list not found; build one with `vocalis sv trials`"
        ) from None
    root = Path(audio_root) if audio_root is not None else p.parent
    labels: list[int] = []
    enrol: list[str] = []
    test: list[str] = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) != 3:
            raise DataError(
                f"{path}: line {no} has {len(fields)} field(s), expected 3 "
                f"(label, enrol, test), e.g. '1\\ta.wav\\tb.wav'"
            )
        lab = _LABELS.get(fields[0].strip().lower())
        if lab is None:
            raise DataError(
                f"{path}: line {no}: label {fields[0]!r}, expected 1 (target) or 0 (non-target)"
            )
        labels.append(lab)
        enrol.append(_resolve(fields[1].strip(), root))
        test.append(_resolve(fields[2].strip(), root))
    if not labels:
        raise DataError(f"{path}: the trial list has no trials")
    meta: dict[str, Any] = {}
    side = meta_path(p)
    if side.is_file() and side != p:
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
    return TrialList(np.array(labels, dtype=np.int8), tuple(enrol), tuple(test), str(path), meta)


def _resolve(cell: str, root: Path) -> str:
    if "://" in cell or os.path.isabs(cell):
        return cell
    return str(root / cell)


def training_speakers(spec: str | os.PathLike) -> tuple[set[str], str]:
    """The speakers a model was trained on, from a training manifest or a checkpoint.

    A ``.csv`` is read as a manifest (its whole ``speaker`` column). Anything else is
    resolved as a checkpoint (run folder, ``RUN/model``, file), which records them as

    1. ``extras["train_speakers"]`` (a list, written by speaker-verification training);
    2. else the speakers of its ``config.dataset.manifest`` when that file exists
       (training and validation speakers both: validation chose the model);
    3. else its classes when it was trained with ``dataset.label_column=speaker``.

    Args:
        spec: a manifest CSV or a checkpoint.

    Returns:
        ``(speakers, where)``: the ids and a short description of their origin.

    Raises:
        DataError: a manifest without a speaker column, or a checkpoint that records none.
        ModelError: an unreadable checkpoint.
    """
    from vocalis.data import read_manifest

    text = str(spec)
    if text.lower().endswith(".csv"):
        m = read_manifest(spec, required=("path", "speaker"))
        return set(m.speakers), f"speakers of {text}"
    from vocalis.checkpoint import load_checkpoint
    from vocalis.inference.pipeline import resolve_checkpoint

    found = recorded_speakers(load_checkpoint(resolve_checkpoint(spec)), text)
    if found is None:
        raise DataError(
            f"{text}: the checkpoint records no training speakers (no extras['train_speakers'], "
            "no readable dataset.manifest); pass the training manifest with "
            "--exclude-speakers-of TRAIN.csv, or --allow-overlap"
        )
    return found


def recorded_speakers(ckpt: Checkpoint, name: str = "") -> tuple[set[str], str] | None:
    """The training speakers a loaded checkpoint records (see :func:`training_speakers`).

    Args:
        ckpt: the checkpoint.
        name: how to call it in the description (default: its source).

    Returns:
        ``(speakers, where)``, or None when it records none.
    """
    from vocalis.data import read_manifest

    name = name or ckpt.source or "checkpoint"
    extras = ckpt.training.get("extras") or {}
    if isinstance(extras, dict) and extras.get("train_speakers"):
        return {str(s) for s in extras["train_speakers"]}, f"training speakers of {name}"
    dataset = (ckpt.config or {}).get("dataset") or {}
    manifest = dataset.get("manifest") if isinstance(dataset, dict) else None
    if manifest and "://" not in str(manifest) and Path(str(manifest)).is_file():
        try:
            m = read_manifest(manifest, required=("path",))
        except DataError:
            m = None
        if m is not None and "speaker" in m.columns and all(m.column("speaker")):
            return set(m.speakers), f"speakers of {manifest}, the training manifest of {name}"
    if isinstance(dataset, dict) and dataset.get("label_column") == "speaker":
        return set(ckpt.classes), f"classes of the speaker classifier {name}"
    return None
