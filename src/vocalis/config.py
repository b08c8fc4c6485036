"""Typed configs: frozen dataclasses built from plain dicts, validated at the edge.

Every config in Vocalis (tier 0, features, model, training, ...) is a frozen
dataclass. :func:`from_dict` builds one from a dict (read from YAML, a
checkpoint or the command line), rejects unknown keys with the nearest valid
key suggested, and checks simple types; :func:`to_dict` turns it back into
plain data for YAML, JSON or a checkpoint. A config check that rejects a value
raises :class:`~vocalis.errors.ConfigValueError` with the field's name, and
:func:`from_dict` puts the dotted path in front of it (``model.params.dropout``).

:func:`compose_groups` composes the YAML of a recipe from config groups
(``configs/<group>/<name>.yaml``) with hydra's compose API, then applies
``key=value`` overrides with OmegaConf; :func:`find_recipe` finds a recipe by
path or by name (``emodb_tier1`` -> ``configs/recipes/emodb_tier1.yaml``).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opt:
    ...     lr: float = 1e-3
    ...     epochs: int = 10
    >>> from_dict(Opt, {"lr": 0.01})
    Opt(lr=0.01, epochs=10)
    >>> from_dict(Opt, {"epoch": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vocalis.errors.UnknownKeyError: unknown key 'epoch' (did you mean 'epochs'?); valid keys: ...
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from vocalis.errors import ConfigError, ConfigValueError, UnknownKeyError
from vocalis.registry import did_you_mean

C = TypeVar("C")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where it is safe."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors: list[ConfigError] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(err)
        if errors:
            raise errors[0]
        raise ConfigError(f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in get_args(tp):
            choices = ", ".join(map(str, get_args(tp)))
            raise ConfigError(f"{where}: got {value!r}, expected one of: {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: got {value!r}, expected a list")
        args = get_args(tp)
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: got {value!r}, expected a mapping")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: got {value!r}, expected a mapping")
        return from_dict(tp, value, where=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise ConfigError(f"{where}: got {value!r}, expected true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str, float)):
            raise ConfigError(f"{where}: got {value!r}, expected an integer")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: got {value!r}, expected an integer") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: got {value!r}, expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: got {value!r}, expected a number") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: got {value!r}, expected a string")
        return str(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any] | None, where: str = "") -> C:
    """Build the dataclass ``cls`` from ``data``.

    Args:
        cls: a dataclass type (nested dataclass fields are built recursively).
        data: plain mapping; missing keys take the defaults.
        where: dotted prefix used in error messages (``"model"``).

    Raises:
        UnknownKeyError: an unknown key (with the nearest valid one suggested).
        ConfigError: a value of the wrong type, or a missing required key.
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    for key in data:
        if key not in names:
            at = f"{where}.{key}" if where else key
            head, colon, rest = str(key).partition(":")
            hint = (  # YAML reads '{frozen:-1}' as the key 'frozen:-1' with no value
                f" (YAML needs a space after the colon: '{head}: {rest}')"
                if colon and head in names
                else did_you_mean(str(key), names)
            )
            raise UnknownKeyError(
                f"unknown key '{at}'{hint}; valid keys: {', '.join(names)}", at, data[key]
            )
    kwargs = {}
    for f in fields:
        at = f"{where}.{f.name}" if where else f.name
        if f.name in data:
            kwargs[f.name] = _convert(data[f.name], hints[f.name], at)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{at}'")
    try:
        return cls(**kwargs)
    except ConfigValueError as err:
        raise err.at(where) from None
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def key_paths(cls: type, prefix: str = "") -> dict[str, list[str]]:
    """Every field of the dataclass ``cls`` and of the dataclasses nested in it, by name.

    Args:
        cls: a dataclass type; fields typed as a dataclass (or an optional one) are
            walked into, other fields are leaves.
        prefix: dotted path of ``cls`` itself (``"model"``).

    Returns:
        ``{field name: [dotted paths]}``, e.g. ``{"p": ["augment.speed.p", ...]}``.

    Example:
        >>> from vocalis.augment.config import AugmentConfig
        >>> key_paths(AugmentConfig, "augment")["min_snr_db"]
        ['augment.noise.min_snr_db', 'augment.spec_noise.min_snr_db']
    """
    out: dict[str, list[str]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        at = f"{prefix}.{f.name}" if prefix else f.name
        out.setdefault(f.name, []).append(at)
        tp = hints[f.name]
        inner = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) in (Union, types.UnionType) and len(inner) == 1:
            tp = inner[0]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            for name, paths in key_paths(tp, at).items():
                out.setdefault(name, []).extend(paths)
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data copy of a dataclass config (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(config)


# --------------------------------------------------------------------------- composition

#: The folder of experiment recipes inside a config root.
RECIPES = "recipes"

#: Name of the primary config node that :func:`compose_groups` hands to hydra.
_PRIMARY = "__vocalis_recipe__"


def config_dir() -> Path:
    """The ``configs/`` folder: ``$VOCALIS_CONFIG_DIR``, ``./configs`` or the source tree's.

    The configs are not package data: outside a checkout, set ``$VOCALIS_CONFIG_DIR``
    or run from a folder that holds ``configs/``.
    """
    env = os.environ.get("VOCALIS_CONFIG_DIR")
    if env:
        return Path(env)
    here = Path("configs")
    if (here / "train").is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "configs"


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML file's top-level mapping (``{}`` for an empty file).

    Raises:
        ConfigError: a missing file, invalid YAML or a top level that is not a mapping.
    """
    from omegaconf import OmegaConf

    path = Path(path)
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _is_recipe(text: str, root: Path) -> bool:
    """``text`` names a recipe of the config root ``root`` (a path or a name)."""
    try:
        find_recipe(text, root)
    except ConfigError:
        return False
    return True


def find_recipe(recipe: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The recipe file ``recipe`` names: a YAML path, or a name in ``<root>/recipes/``.

    Args:
        recipe: ``configs/recipes/emodb_tier1.yaml``, or just ``emodb_tier1``.
        root: the config root (default: :func:`config_dir`).

    Returns:
        The path of an existing file.

    Raises:
        ConfigError: no such file; for a name, the nearest recipe names are suggested.

    Example:
        >>> find_recipe("emodb_tier1").name
        'emodb_tier1.yaml'
    """
    path = Path(recipe)
    if path.is_file():
        return path
    text = str(recipe)
    base = Path(root if root is not None else config_dir())
    if path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text:
        # a relative path as the docs write it (configs/recipes/x.yaml) works from anywhere:
        # it is also looked up against the config root's folder and the root itself
        for candidate in (base.parent / path, base / path) if not path.is_absolute() else ():
            if candidate.is_file():
                return candidate
        raise ConfigError(
            f"recipe {text}: file not found (here, nor under {base.resolve().parent}); pass an "
            f"existing --config or a recipe name: {', '.join(recipe_names(base)) or 'none'}"
        )
    folder = base / RECIPES
    candidate = folder / f"{text}.yaml"
    if candidate.is_file():
        return candidate
    names = recipe_names(base)
    raise ConfigError(
        f"recipe '{text}': no such file and no {candidate}{did_you_mean(text, names)}; "
        f"recipes: {', '.join(names) or 'none'}"
    )


def recipe_names(root: str | os.PathLike) -> list[str]:
    """The recipe names of a config root (``<root>/recipes/*.yaml``), sorted."""
    folder = Path(root) / RECIPES
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def config_groups(root: str | os.PathLike) -> list[str]:
    """The config groups of a root: its sub-folders other than ``recipes``."""
    base = Path(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and p.name != RECIPES)


def _parse_defaults(raw: Any, where: str, groups: Sequence[str]) -> dict[str, str]:
    choices: dict[str, str] = {}
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else None
    if items is None:
        raise ConfigError(f"{where}: 'defaults' must be a list like [dataset: emodb, model: tier1]")
    for item in items:
        if item == "_self_":
            continue  # the recipe's own body always comes last
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: defaults entry {item!r} is not 'group: name'")
        for group, name in item.items():
            group = str(group).lstrip("/")
            if group not in groups:
                raise ConfigError(
                    f"{where}: unknown config group '{group}'{did_you_mean(group, groups)}; "
                    f"groups: {', '.join(groups)}"
                )
            choices[group] = str(name)
    return choices


def compose_groups(
    recipe: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    *,
    root: str | os.PathLike | None = None,
    default_groups: Mapping[str, str] | None = None,
    sections: Sequence[str] | None = None,
    fallbacks: Mapping[str, Callable[[str], dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Compose a recipe's raw config: group files, the recipe's body, then overrides.

    The group choices (``default_groups``, then the recipe's ``defaults`` list,
    then ``group=name`` overrides) are composed by hydra from ``<root>/<group>/``
    (their own ``defaults`` lists, packages and interpolations included); the
    recipe's body is merged over them, and dotted ``section.key=value`` overrides
    over that (OmegaConf's dot-list syntax: ``train.lr=3e-4``, ``a.b=[1,2]``).

    Args:
        recipe: a recipe path or name (:func:`find_recipe`), or ``None``.
        overrides: ``group=name`` choices and dotted (or top-level) ``key=value``.
        root: the config root (default: the recipe's ``configs/`` folder when it is
            in one, else :func:`config_dir`).
        default_groups: group choices used when neither the recipe nor the
            overrides make one (one whose file the root lacks, without a fallback,
            is left out).
        sections: the recipe's allowed top-level keys (``None``: any; the typed
            config checks them). With sections, a bare ``key=value`` must name a group.
        fallbacks: ``group -> (name -> section)`` for a choice without a file (a
            registered model or extractor name: ``model=ecapa`` -> ``{"name": "ecapa"}``).

    Returns:
        Plain data (interpolations resolved).

    Raises:
        ConfigError: a missing file, an unknown group, section or choice (with the
            nearest one suggested), or a malformed override.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = find_recipe(recipe, root) if recipe is not None else None
    base = Path(root) if root is not None else None
    body: dict[str, Any] = read_yaml(path) if path is not None else {}
    if base is None and path is not None:
        own = path.resolve().parent.parent
        if own.joinpath("train").is_dir() and path.resolve().parent.name == RECIPES:
            base = own
    base = (base or config_dir()).resolve()
    groups = config_groups(base)
    where = str(path) if path is not None else "config"
    fallbacks = fallbacks or {}
    # a default choice the root has no file (and no fallback) for is left out: a config
    # root made before a group existed (configs/augment/) still composes
    choices = {
        g: n
        for g, n in (default_groups or {}).items()
        if g in fallbacks or (base / g / f"{n}.yaml").is_file()
    }
    if "defaults" in body:
        choices.update(_parse_defaults(body.pop("defaults"), where, groups))
    if sections is not None:
        unknown = [k for k in body if k not in sections]
        if unknown:
            raise ConfigError(
                f"{where}: unknown section '{unknown[0]}'{did_you_mean(unknown[0], sections)}; "
                f"sections: {', '.join(sections)}"
            )
    dotted: list[str] = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override {item!r}: expected key=value, e.g. train.epochs=30"
                + (f"; a recipe is given as --config {item}" if _is_recipe(item, base) else "")
            )
        key, value = item.split("=", 1)
        key = key.strip().lstrip("+")
        if "." not in key and key in groups:
            choices[key] = value.strip()
        elif "." not in key and sections is not None:
            raise ConfigError(
                f"override {item!r}: '{key}' is not a config group"
                f"{did_you_mean(key, groups)}; use group=name or section.key=value"
            )
        else:
            dotted.append(f"{key}={value}")
    composed = _hydra_compose(base, choices, body, fallbacks)
    item = ""
    try:
        merged = OmegaConf.create(composed)
        for item in dotted:  # one at a time, so list items can be addressed: a.members.1.x=2
            key, _, text = item.partition("=")
            value = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={text}"]))["v"]
            OmegaConf.update(merged, key, value, merge=True, force_add=True)
        item = ""
        return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        first = str(err).splitlines()[0]
        what = f"override {item!r}" if item else "the config"
        raise ConfigError(f"{where}: cannot apply {what} ({first})") from None


def _hydra_compose(
    base: Path,
    choices: Mapping[str, str],
    body: dict[str, Any],
    fallbacks: Mapping[str, Callable[[str], dict[str, Any]]],
) -> dict[str, Any]:
    """Hydra's composition of ``choices`` from ``base`` with ``body`` last (``_self_``)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    store = ConfigStore.instance()
    defaults: list[Any] = []
    for group, name in choices.items():
        if not (base / group / f"{name}.yaml").is_file():
            if group not in fallbacks:
                folder = base / group
                available = sorted(p.stem for p in folder.glob("*.yaml"))
                raise ConfigError(
                    f"{group}={name}: no {folder / (name + '.yaml')}"
                    f"{did_you_mean(name, available)}; available: {', '.join(available) or 'none'}"
                )
            store.store(group=group, name=name, node=fallbacks[group](name))
        defaults.append({group: name})
    store.store(name=_PRIMARY, node={"defaults": [*defaults, "_self_"], **body})
    try:
        with initialize_config_dir(config_dir=str(base), version_base=None):
            cfg = compose(config_name=_PRIMARY)
        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"cannot compose the config from {base} ({first})") from None
