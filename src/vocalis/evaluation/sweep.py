"""Sweeps: train one recipe for every combination of overrides, then one mean ± std table.

``vocalis sweep --config R model.mode=1,2,3 seed=1,2,3 --out DIR`` expands the
overrides with Hydra's multirun grammar (``key=a,b``, ``key=range(1,4)``,
``key=choice(a,b)``; an override without a sweep is applied to every
combination), trains each combination into its own run folder and tabulates
them with :func:`vocalis.evaluation.compare.compare`::

    DIR/
      model.mode=1,seed=1/ ...      # one ordinary run folder per combination (vocalis train)
      sweep.json                    # combinations, their status and metrics, the groups
      sweep.md                      # the printed table

``seed=`` is the run seed (``train.seed``). Rows are grouped by every swept
key except the seed, and every numeric column of the comparison table (UAR,
accuracy, macro-F1, validation UAR, and any column a model adds to
:data:`~vocalis.evaluation.compare.COLUMN_HELP`) is reported as the mean and
sample standard deviation over the group's seeds.

A combination whose run folder has its ``metrics.json`` is finished and
skipped, so an interrupted sweep resumes where it stopped (a neural run that
was cut short resumes from its last checkpoint). The combinations fan out on
any :mod:`vocalis.backends` backend (``--backend ray``, ``--parallel N``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vocalis.errors import ConfigError
from vocalis.io import as_path, write_json, write_text

if TYPE_CHECKING:
    from vocalis.backends import Backend, BackendConfig

log = logging.getLogger(__name__)

__all__ = ["SEED_KEYS", "Combination", "expand_overrides", "group_rows", "sweep"]

#: Override keys that name the seed: they are averaged over, never grouped by.
SEED_KEYS = ("seed", "train.seed")


@dataclasses.dataclass(frozen=True)
class Combination:
    """One point of a sweep.

    Attributes:
        name: its run folder's name (``model.mode=1,seed=2``).
        swept: ``{key: value}`` of the swept keys, in the order given.
        overrides: every override it is trained with (fixed and swept).
    """

    name: str
    swept: dict[str, str]
    overrides: tuple[str, ...]

    @property
    def group(self) -> dict[str, str]:
        """The swept keys but the seed: what the table groups by."""
        return {k: v for k, v in self.swept.items() if k not in SEED_KEYS}


def _folder_name(swept: dict[str, str]) -> str:
    name = ",".join(f"{k}={v}" for k, v in swept.items()) or "default"
    return "".join(c if c.isalnum() or c in "=,.-_+" else "_" for c in name)


def expand_overrides(overrides: Sequence[str]) -> list[Combination]:
    """The cross product of the sweep overrides, in the order given (the last varies fastest).

    Args:
        overrides: Hydra override strings: ``key=value`` (every combination),
            ``key=a,b`` / ``key=range(1,4)`` / ``key=choice(a,b)`` (swept).

    Returns:
        The combinations; one (with no swept key) when nothing is swept.

    Raises:
        ConfigError: an override Hydra's grammar cannot parse, or a key given twice.

    Example:
        >>> [c.name for c in expand_overrides(["model.mode=1,2", "seed=range(1,3)", "x=0"])]
        ['model.mode=1,seed=1', 'model.mode=1,seed=2', 'model.mode=2,seed=1', 'model.mode=2,seed=2']
        >>> expand_overrides(["seed=1,2"])[1].overrides
        ('train.seed=2',)
    """
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as err:
        raise ConfigError(f"sweep overrides: {err}".splitlines()[0]) from None
    keys = [o.key_or_group for o in parsed]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"sweep overrides: {', '.join(twice)} given twice; give each key once")
    fixed = [_seed(o.input_line) for o in parsed if not o.is_sweep_override()]
    swept = [o for o in parsed if o.is_sweep_override()]
    values = [list(o.sweep_string_iterator()) for o in swept]
    combos = []
    for point in itertools.product(*values):
        chosen = {o.key_or_group: v for o, v in zip(swept, point, strict=True)}
        lines = fixed + [_seed(f"{k}={v}") for k, v in chosen.items()]
        combos.append(Combination(_folder_name(chosen), chosen, tuple(lines)))
    return combos


def _seed(line: str) -> str:
    """``seed=3`` -> ``train.seed=3`` (what ``vocalis train --seed`` sets)."""
    return "train." + line if line.startswith("seed=") else line


def _finished(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").is_file()


def _train_combination(recipe: str | None, overrides: tuple[str, ...], run_dir: str) -> dict:
    """One combination on any backend: ``vocalis train`` into ``run_dir``; never raises."""
    from vocalis.ensemble.recipe_file import EnsembleRecipe
    from vocalis.training import load_recipe, train
    from vocalis.training.ensemble_estimator import train_ensemble

    t0 = time.perf_counter()
    record: dict[str, Any] = {"status": "success"}
    try:
        config = load_recipe(recipe, list(overrides))
        if isinstance(config, EnsembleRecipe):
            train_ensemble(config, run_dir)
        else:
            train(config, run_dir, progress=False)
    except Exception as err:  # one failed combination must not stop the others
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
        as_path(run_dir).mkdir(parents=True, exist_ok=True)
        write_text(as_path(run_dir) / "error.txt", traceback.format_exc())
        log.error("%s failed: %s", as_path(run_dir).name, record["error"])
    record["seconds"] = round(time.perf_counter() - t0, 2)
    return record


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def group_rows(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Mean and sample standard deviation of every numeric column, per group of ``keys``.

    Args:
        rows: comparison rows with the ``keys`` columns (the swept values).
        keys: columns that define a group (every swept key but the seed).
        columns: the columns to summarise (those numeric in a group's rows are).

    Returns:
        One row per group, in first-seen order: the ``keys``, ``n`` (rows),
        ``runs`` and ``{column: mean}`` plus ``{column}_std`` (0 for one row).

    Example:
        >>> rows = [{"m": "a", "uar": 0.5}, {"m": "a", "uar": 0.7}, {"m": "b", "uar": 0.6}]
        >>> g = group_rows(rows, ["m"], ["uar"])
        >>> [(r["m"], r["n"], round(r["uar"], 2), round(r["uar_std"], 4)) for r in g]
        [('a', 2, 0.6, 0.1414), ('b', 1, 0.6, 0.0)]
    """
    import numpy as np

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    out = []
    for values, members in groups.items():
        summary: dict[str, Any] = dict(zip(keys, values, strict=True))
        summary["n"] = len(members)
        summary["runs"] = [m.get("run") for m in members]
        for column in columns:
            vals = [m.get(column) for m in members]
            if not vals or not all(_numeric(v) for v in vals):
                continue
            arr = np.asarray(vals, dtype=float)
            summary[column] = float(arr.mean())
            summary[f"{column}_std"] = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        out.append(summary)
    return out


def _table(groups: list[dict[str, Any]], keys: Sequence[str], columns: Sequence[str]) -> str:
    shown = [c for c in columns if any(c in g for g in groups)]
    head = [*keys, "n", *shown]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in groups:
        cells = [str(g.get(k, "")) for k in keys] + [str(g["n"])]
        for c in shown:
            cells.append(f"{g[c]:.4f} ± {g[c + '_std']:.4f}" if c in g else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Comparison columns that are bookkeeping, not results: not summarised.
_NOT_RESULTS = ("epochs", "seconds", "uar_std")


def sweep(
    recipe: str | os.PathLike | None,
    overrides: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    parallel: int = 1,
    backend: str | BackendConfig | Backend | None = None,
) -> dict[str, Any]:
    """Train every combination of ``overrides`` and summarise them (module docstring).

    Every combination's config is loaded (and so validated) before anything
    trains; a bad key fails the sweep at once, in one line.

    Args:
        recipe: a recipe path or name (neural or ensemble), or None (default groups).
        overrides: Hydra override strings, swept (``key=a,b``) or fixed.
        out_dir: the sweep folder.
        parallel: combinations trained at once.
        backend: ``local`` (default), ``ray``, ``slurm``, a
            :class:`~vocalis.backends.BackendConfig` or a backend.

    Returns:
        The content of ``sweep.json``: ``recipe``, ``overrides``, ``keys`` (swept),
        ``group_by``, ``combinations`` (name, swept values, status, comparison
        row), ``groups`` (:func:`group_rows`), ``table`` (Markdown), ``failed``.

    Raises:
        ConfigError: a bad override, or a seed sweep on an ensemble recipe (its fit
            is deterministic).
    """
    from vocalis.backends import make_backend, run_tasks
    from vocalis.ensemble.recipe_file import EnsembleRecipe
    from vocalis.evaluation.compare import COLUMNS, compare
    from vocalis.training import load_recipe

    if isinstance(backend, str) or backend is None:
        backend = make_backend(backend, workers=parallel)
    else:
        backend = make_backend(backend)
    combos = expand_overrides(overrides)
    recipe = None if recipe is None else str(recipe)
    for combo in combos:  # validate every combination before training any
        config = load_recipe(recipe, list(combo.overrides))
        if isinstance(config, EnsembleRecipe) and any(k in SEED_KEYS for k in combo.swept):
            raise ConfigError(
                "seed: an ensemble recipe has no seed (its fit is deterministic); sweep its "
                "own keys (ensemble.fusion_resolution=0,4) or a neural recipe's seeds"
            )
    out = as_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, Any]] = {}
    pending = []
    for combo in combos:
        if _finished(out / combo.name):
            log.info("%s: finished earlier, skipped", combo.name)
            records[combo.name] = {"status": "success", "skipped": True}
        else:
            pending.append(combo)

    def done(i: int, record: dict | None, error: BaseException | None) -> None:
        name = pending[i].name
        if error is not None:  # the worker itself died (after the backend's retries)
            record = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
            log.error("%s failed: %s", name, record["error"])
        records[name] = record or {}
        log.info("%s: %s (%d/%d)", name, records[name]["status"], len(records), len(combos))

    tasks = [(recipe, c.overrides, str(out / c.name)) for c in pending]
    run_tasks(backend, _train_combination, tasks, done)

    keys = list(combos[0].swept) if combos else []
    group_by = [k for k in keys if k not in SEED_KEYS]
    finished = [c for c in combos if _finished(out / c.name)]
    rows = compare([out / c.name for c in finished], sort_by=None) if finished else []
    by_run = {as_path(r["run"]).name: r for r in rows}
    for combo in finished:
        by_run[combo.name].update(combo.swept)
    columns = [c for c in COLUMNS if c not in _NOT_RESULTS]
    columns += sorted({k for r in rows for k in r} - set(COLUMNS) - set(keys))  # added later
    groups = group_rows([by_run[c.name] for c in finished], group_by, columns)
    table = _table(groups, group_by, columns)
    result = {
        "recipe": recipe,
        "overrides": list(overrides),
        "keys": keys,
        "group_by": group_by,
        "combinations": [
            {
                "name": c.name,
                "swept": c.swept,
                "overrides": list(c.overrides),
                **records.get(c.name, {"status": "failed"}),
                "row": by_run.get(c.name),
            }
            for c in combos
        ],
        "groups": groups,
        "table": table,
        "failed": {n: r.get("error") for n, r in records.items() if r.get("status") == "failed"},
        "backend": {"name": backend.config.name, "workers": backend.config.workers},
    }
    write_json(out / "sweep.json", result)
    write_text(out / "sweep.md", table + "\n")
    return result
