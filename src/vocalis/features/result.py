"""What :func:`~vocalis.features.pipeline.extract_many` returns (importable without torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExtractionResult:
    """What :func:`~vocalis.features.pipeline.extract_many` did.

    Attributes:
        paths: the input paths, in order.
        features: ``(F, N)`` per path, in input order (torch tensors, or numpy
            arrays with ``as_numpy=True``); ``None`` for a failed file.
        failures: ``(path, message)`` for each skipped file, in input order.
        hits: served from the cache.
        computed: computed because absent from the cache (or no cache).
        regenerated: recomputed because the cache entry was corrupt or stale.
        seconds: wall time.
        audio_seconds: duration of the features produced (frames x frame shift).

    Example:
        >>> r = ExtractionResult(["a.wav"], [None], hits=1, seconds=0.5, audio_seconds=2.0)
        >>> for part in r.summary().split("; "):
        ...     print(part)
        1 files: 1 cache hits, 0 computed, 0 regenerated, 0 failed
        0.50 s, 2.0 s of audio, 4x real time
    """

    paths: list[str]
    features: list[Any]
    failures: list[tuple[str, str]] = field(default_factory=list)
    hits: int = 0
    computed: int = 0
    regenerated: int = 0
    seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def x_realtime(self) -> float:
        """Seconds of audio per second of wall time."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        """``{path: features}`` for the files that succeeded."""
        return {p: f for p, f in zip(self.paths, self.features, strict=True) if f is not None}

    def summary(self) -> str:
        """One line: files, cache hits, computed, regenerated, failures, time, speed."""
        return (
            f"{len(self.paths)} files: {self.hits} cache hits, {self.computed} computed, "
            f"{self.regenerated} regenerated, {len(self.failures)} failed; "
            f"{self.seconds:.2f} s, {self.audio_seconds:.1f} s of audio, "
            f"{self.x_realtime:.0f}x real time"
        )
