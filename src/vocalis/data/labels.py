"""Label mappings (merge corpus labels into a common set) and the label encoder.

A label map is a YAML file ``{target: [source, ...]}``; matching of sources is
case-insensitive. Builtin maps ship in ``vocalis/resources/label_maps``:

- ``4class``: happy / neutral / sad / angry across EmoDB, RAVDESS, CREMA-D,
  TESS, SAVEE and IEMOCAP spellings; surprise and excitement count as happy,
  fear as sad, disgust as angry; boredom, calm, frustration, other and the
  IEMOCAP ``xxx`` are dropped (left unmapped).
- ``iemocap4``: the usual IEMOCAP protocol (ang, hap+exc, neu, sad).

Example:
    >>> mapping = load_label_map("4class")
    >>> mapping["Happiness"], mapping["fear"], "boredom" in mapping
    ('happy', 'sad', False)
    >>> enc = LabelEncoder.from_labels(["sad", "angry", "sad", "happy"])
    >>> enc.classes, enc.encode("sad"), enc.decode([0, 2])
    (('angry', 'happy', 'sad'), 2, ['angry', 'sad'])
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from vocalis.data.manifest import Manifest
from vocalis.errors import DataError
from vocalis.io import is_url, read_bytes, write_json
from vocalis.registry import did_you_mean

Unmapped = Literal["error", "drop", "keep"]


def builtin_label_maps() -> list[str]:
    """Names of the label maps shipped with Vocalis (``4class``, ...)."""
    folder = resources.files("vocalis.resources") / "label_maps"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@dataclass(frozen=True)
class LabelMap(Mapping[str, str]):
    """A many-to-one mapping from source labels to target labels.

    Behaves as a read-only ``{source: target}`` mapping whose look-ups ignore case
    and surrounding spaces.

    Args:
        targets: ``{target: (source, ...)}`` as written in the YAML file.
        name: where it came from (builtin name or file path), for messages.

    Raises:
        DataError: a source listed under two targets.
    """

    targets: Mapping[str, tuple[str, ...]]
    name: str = "label map"
    _lookup: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup: dict[str, str] = {}
        for target, sources in self.targets.items():
            for src in sources:
                key = _norm(src)
                if key in lookup and lookup[key] != target:
                    raise DataError(
                        f"{self.name}: source label '{src}' is listed under both "
                        f"'{lookup[key]}' and '{target}'; keep it under one target"
                    )
                lookup[key] = target
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def from_dict(cls, data: Any, name: str = "label map") -> LabelMap:
        """Build from ``{target: [source, ...]}`` (a bare string counts as one source)."""
        if not isinstance(data, Mapping) or not data:
            raise DataError(
                f"{name}: expected a mapping {{target: [source, ...]}}, got {type(data).__name__}"
            )
        targets: dict[str, tuple[str, ...]] = {}
        for target, sources in data.items():
            if isinstance(sources, (str, int)):
                sources = [sources]
            if not isinstance(sources, (list, tuple)) or not sources:
                raise DataError(
                    f"{name}: target '{target}' needs a non-empty list of source labels, "
                    f"got {sources!r}"
                )
            targets[str(target)] = tuple(str(s) for s in sources)
        return cls(targets, name=name)

    def __getitem__(self, label: str) -> str:
        return self._lookup[_norm(label)]

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and _norm(label) in self._lookup

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup)

    def __len__(self) -> int:
        return len(self._lookup)

    @property
    def classes(self) -> tuple[str, ...]:
        """Target labels, sorted."""
        return tuple(sorted(self.targets))


def _norm(label: str) -> str:
    return str(label).strip().lower()


def load_label_map(name_or_path: str | os.PathLike | Mapping[str, Any]) -> LabelMap:
    """Load a builtin label map by name, a YAML file, or a ready mapping.

    Args:
        name_or_path: ``"4class"`` (see :func:`builtin_label_maps`), a path or URL
            of a YAML file ``{target: [source, ...]}``, or such a mapping.

    Raises:
        DataError: unknown name or missing file (listing the builtin names), or a
            file that is not such a mapping.
    """
    if isinstance(name_or_path, LabelMap):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return LabelMap.from_dict(dict(name_or_path))
    import yaml

    text_name = str(name_or_path)
    builtin = builtin_label_maps()
    if text_name in builtin:
        res = resources.files("vocalis.resources") / "label_maps" / f"{text_name}.yaml"
        raw = res.read_text(encoding="utf-8")
    else:
        local = not is_url(text_name)
        if local and not Path(text_name).expanduser().is_file():
            raise DataError(
                f"label map '{text_name}' is neither a builtin "
                f"({', '.join(builtin)}){did_you_mean(text_name, builtin)} nor an existing "
                "YAML file"
            )
        path = str(Path(text_name).expanduser()) if local else text_name
        raw = read_bytes(path).decode("utf-8")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0]
        raise DataError(f"{text_name}: not valid YAML ({first})") from None
    return LabelMap.from_dict(data, name=text_name)


def apply_label_map(
    manifest: Manifest,
    mapping: LabelMap | Mapping[str, Any] | str | os.PathLike,
    column: str = "label",
    unmapped: Unmapped = "error",
) -> Manifest:
    """Replace the labels in ``column`` by their targets under ``mapping``.

    The original value is kept in a new column ``<column>_orig`` (e.g.
    ``label_orig``) so that nothing is lost.

    Args:
        manifest: the rows.
        mapping: a :class:`LabelMap`, a ``{target: [source, ...]}`` dict, a builtin
            name or a YAML path.
        column: the label column to map.
        unmapped: what to do with a label the map does not list: ``"error"``
            (raise), ``"drop"`` (remove the row) or ``"keep"`` (leave it as is).

    Returns:
        A new manifest.

    Raises:
        DataError: with ``unmapped="error"``, a label missing from the map (the
            message names the label, the row's file and the map).

    Example:
        >>> m = Manifest([{"path": "/a.wav", "label": "anger"},
        ...               {"path": "/b.wav", "label": "boredom"}])
        >>> apply_label_map(m, "4class", unmapped="drop").labels()
        ['angry']
    """
    if unmapped not in ("error", "drop", "keep"):
        raise DataError(f"unmapped={unmapped!r}; expected 'error', 'drop' or 'keep'")
    lmap = load_label_map(mapping)
    manifest.require(column)
    keep: list[int] = []
    new: list[str] = []
    for i, row in enumerate(manifest):
        value = row[column]
        if value in lmap:
            keep.append(i)
            new.append(lmap[value])
        elif unmapped == "keep":
            keep.append(i)
            new.append(value)
        elif unmapped == "error":
            raise DataError(
                f"{row['path']}: {column} '{value}' is not in {lmap.name} "
                f"(targets: {', '.join(lmap.classes)}); add it to the map or pass "
                "unmapped='drop' (--unmapped drop)"
            )
    out = manifest.select(keep)
    orig = f"{column}_orig"
    if orig not in out.columns:
        out = out.with_column(orig, out.column(column))
    return out.with_column(column, new)


class LabelEncoder:
    """String labels <-> contiguous class ids ``0..K-1``.

    Args:
        classes: the class names in id order (unique).

    Example:
        >>> enc = LabelEncoder.from_labels(["b", "a", "b"])
        >>> enc.to_dict()
        {'classes': ['a', 'b'], 'label_to_index': {'a': 0, 'b': 1}}
        >>> LabelEncoder.from_dict(enc.to_dict()) == enc
        True
        >>> enc.encode(["b", "a"]).tolist()
        [1, 0]
    """

    def __init__(self, classes: Sequence[str]) -> None:
        classes = tuple(str(c) for c in classes)
        if not classes:
            raise DataError("LabelEncoder needs at least one class")
        dup = sorted({c for c in classes if classes.count(c) > 1})
        if dup:
            raise DataError(f"LabelEncoder: duplicate class(es) {', '.join(dup)}")
        self._classes = classes
        self._index = {c: i for i, c in enumerate(classes)}

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelEncoder:
        """Classes = the sorted distinct values of ``labels``."""
        return cls(sorted({str(x) for x in labels}))

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names; ``classes[i]`` has id ``i``."""
        return self._classes

    @property
    def num_classes(self) -> int:
        """K, the number of classes."""
        return len(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelEncoder) and other._classes == self._classes

    def __repr__(self) -> str:
        return f"LabelEncoder(classes={list(self._classes)})"

    def _one(self, label: str) -> int:
        try:
            return self._index[label]
        except (KeyError, TypeError):
            raise DataError(
                f"unknown label '{label}'{did_you_mean(str(label), list(self._classes))}; "
                f"known classes: {', '.join(self._classes)}"
            ) from None

    @overload
    def encode(self, labels: str) -> int: ...
    @overload
    def encode(self, labels: Iterable[str]) -> np.ndarray: ...

    def encode(self, labels):
        """Class id of one label, or an int64 array of ids for an iterable.

        Raises:
            DataError: a label that is not a known class (lists the classes).
        """
        if isinstance(labels, str):
            return self._one(labels)
        return np.asarray([self._one(x) for x in labels], dtype=np.int64)

    @overload
    def decode(self, ids: int) -> str: ...
    @overload
    def decode(self, ids: Iterable[int]) -> list[str]: ...

    def decode(self, ids):
        """Class name of one id, or a list of names for an iterable of ids."""
        if isinstance(ids, (int, np.integer)):
            return self._name(int(ids))
        return [self._name(int(i)) for i in np.asarray(ids).reshape(-1)]

    def _name(self, i: int) -> str:
        if not 0 <= i < len(self._classes):
            raise DataError(f"class id {i} is out of range 0..{len(self._classes) - 1}")
        return self._classes[i]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``label_map.json``: ``classes`` and ``label_to_index``."""
        return {"classes": list(self._classes), "label_to_index": dict(self._index)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelEncoder:
        """Inverse of :meth:`to_dict`; also accepts a bare ``{label: index}`` mapping.

        Raises:
            DataError: indices that are not exactly ``0..K-1``.
        """
        if "classes" in data:
            return cls(list(data["classes"]))
        index = data.get("label_to_index", data)
        try:
            pairs = sorted((int(i), str(lab)) for lab, i in index.items())
        except (TypeError, ValueError):
            raise DataError(f"label map: expected {{label: index}}, got {dict(data)!r}") from None
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise DataError(
                f"label map: class ids must be 0..{len(pairs) - 1}, got {[i for i, _ in pairs]}"
            )
        return cls([lab for _, lab in pairs])

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON (atomically), e.g. ``run/label_map.json``."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelEncoder:
        """Read a file written by :meth:`save`."""
        try:
            data = json.loads(read_bytes(path).decode("utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: label map not found") from None
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        return cls.from_dict(data)


def encode_known(encoder: LabelEncoder, labels: Sequence[str], source: str) -> list[int]:
    """Class ids of ``labels`` under a trained model's ``encoder``.

    Raises:
        DataError: a label the model was not trained on (naming it and the known classes).

    Example:
        >>> encode_known(LabelEncoder(["a", "b"]), ["b", "a"], "m.csv")
        [1, 0]
    """
    known = set(encoder.classes)
    for label in labels:
        if label not in known:
            raise DataError(
                f"{source}: label '{label}' was never seen in training (known classes: "
                f"{', '.join(encoder.classes)}); map it with dataset.label_map or remove those rows"
            )
    return [int(i) for i in encoder.encode(list(labels))]
