"""Argparse helpers that keep ``vocalis --help`` and parsing free of heavy imports.

Building the parser and parsing the command line must not import torch (nor
numpy): a :class:`LazyChoices` holds registry-backed ``choices`` and imports the
registry only when asked about a value outside its ``known`` names (the
built-ins, listed here without importing anything heavy) or iterated without
``known`` names (``--help``). Give such an argument an explicit ``metavar`` and
put ``%(choices)s`` in its help: argparse would otherwise list the choices while
building the parser. :class:`StoreWithText` and :class:`ConfigDefault` do the
same for help texts and defaults read from registries and config classes.

Example:
    >>> import argparse
    >>> loaded = []
    >>> names = LazyChoices(lambda: loaded.append(1) or ["a", "b", "c"], known=("a",))
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--x", choices=names, metavar="NAME", help="one of: %(choices)s")
    >>> p.parse_args(["--x", "a"]).x, loaded
    ('a', [])
    >>> p.parse_args(["--x", "c"]).x, loaded
    ('c', [1])
    >>> "one of: a, b, c" in p.format_help()
    True
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from vocalis.audio.config import BUILTIN_DENOISERS


class LazyChoices:
    """A container of names computed by ``load()`` on first need.

    Args:
        load: returns the valid names (imports the registry).
        known: names valid without calling ``load`` (the built-ins).
    """

    def __init__(self, load: Callable[[], Iterable[str]], known: Iterable[str] = ()) -> None:
        self._load = load
        self._known = frozenset(known)
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        """All valid names (loads them once)."""
        if self._names is None:
            self._names = list(self._load())
        return self._names

    def __contains__(self, value: object) -> bool:
        return value in self._known or value in self.names()

    def __iter__(self) -> Iterator[str]:
        # --help lists the built-ins without importing the registry (a test keeps the
        # two equal); once loaded (e.g. an unknown value was checked), the registry
        if self._names is None and self._known:
            return iter(sorted(self._known))
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"LazyChoices({', '.join(self.names())})"


def _feature_names() -> list[str]:
    from vocalis.features import FEATURES

    return FEATURES.names()


def _denoiser_names() -> list[str]:
    from vocalis.audio.denoise import DENOISERS

    return DENOISERS.names()


def feature_choices() -> LazyChoices:
    """Names of the feature extractors (``vocalis.features.FEATURES``)."""
    from vocalis.features import BUILTIN_FEATURES

    return LazyChoices(_feature_names, known=BUILTIN_FEATURES)


def denoiser_choices() -> LazyChoices:
    """Names of the tier-0 denoisers (``vocalis.audio.denoise.DENOISERS``)."""
    return LazyChoices(_denoiser_names, known=BUILTIN_DENOISERS)


class LazyText:
    """Text computed on first ``str()`` (help strings that list registry names).

    Argparse formats ``%(name)s`` help placeholders only when printing help, so an
    attribute holding a :class:`LazyText` costs nothing until then (see
    :class:`StoreWithText`).

    Example:
        >>> text = LazyText(lambda: "a, b")
        >>> f"{text}"
        'a, b'
    """

    def __init__(self, load: Callable[[], str]) -> None:
        self._load = load
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = str(self._load())
        return self._text


class StoreWithText(argparse.Action):
    """A plain ``store`` action with a lazy ``text`` attribute for its help (``%(text)s``).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> _ = p.add_argument("--m", action=StoreWithText, text=lambda: "x, y",
        ...                    help="one of: %(text)s")
        >>> p.parse_args(["--m", "z"]).m, "one of: x, y" in p.format_help()
        ('z', True)
    """

    def __init__(self, *args: Any, text: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.text = LazyText(text)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        """Store the value as given (the text shown in the help is not the value)."""
        setattr(namespace, self.dest, values)


_ROLE = re.compile(r":[a-z]+:`~?([^`<]+?)(?:\s*<[^>]*>)?`")


def plain_text(text: str) -> str:
    """Docstring markup (reST roles, double backquotes, ``::``) as plain terminal text.

    Example:
        >>> plain_text("See :func:`~vocalis.report` or ``vocalis report``. Example::")
        'See vocalis.report or vocalis report. Example:'
    """
    text = _ROLE.sub(r"\1", text)
    text = re.sub(r"``(.+?)``", r"\1", text, flags=re.S)
    return re.sub(r"::(\s*)$", r":\1", text, flags=re.M)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The one help style of every ``vocalis`` verb.

    - ``(default: X)`` is appended only when it says something: not for ``None``,
      ``False`` or suppressed defaults, required options, or a help text that
      already names its default;
    - description and epilog keep their line breaks (examples stay readable), and a
      callable one is called when the help is printed, not when the parser is built;
    - reST markup of docstrings (``:func:`x```, double backquotes) is shown as plain text.

    Example:
        >>> p = argparse.ArgumentParser(formatter_class=HelpFormatter, description="``x``")
        >>> _ = p.add_argument("--n", type=int, default=3, help="count")
        >>> _ = p.add_argument("--out", help="a file (default: print)")
        >>> _ = p.add_argument("--flag", action="store_true", help="a flag")
        >>> text = p.format_help()
        >>> "count (default: 3)" in text, "(default: None)" in text, "(default: False)" in text
        (True, False, False)
    """

    def _format_text(self, text: Any) -> str:
        return plain_text(super()._format_text(text() if callable(text) else text))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # prose paragraphs are wrapped; a paragraph with an indented line (an example)
        # is kept as written
        out = []
        for para in text.split("\n\n"):
            lines = para.splitlines()
            if any(line[:1].isspace() for line in lines if line.strip()):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(lines), width, initial_indent=indent,
                                         subsequent_indent=indent))  # fmt: skip
        return "\n\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain_text(str(action.help or "")).replace(" (default: %(default)s)", "")
        default = action.default
        if isinstance(default, ConfigDefault):
            default = default.value()
        informative = (
            default is not None
            and default is not False
            and default is not argparse.SUPPRESS
            and default != []
            and not action.required
            and action.option_strings
            and "default" not in text
            and "%(default)" not in text
        )
        return f"{text} (default: %(default)s)" if informative else text


def _number(kind: type, low: float | None, high: float | None, what: str) -> Callable:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value or value in (float("inf"), float("-inf")):  # nan, inf
            raise argparse.ArgumentTypeError(f"got {text}, expected {what} (finite)")
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"got {text}, expected {what}")
        return value

    parse.__name__ = what
    return parse


#: Argparse ``type=`` validators: a bad number is refused while parsing, before
#: anything heavy is imported or loaded (``vocalis predict --batch-size 0``).
positive_int = _number(int, 1, None, "an integer >= 1")
non_negative_int = _number(int, 0, None, "an integer >= 0")
positive_float = _number(float, 1e-300, None, "a number > 0")
non_negative_float = _number(float, 0.0, None, "a number >= 0")
share = _number(float, 0.0, 1.0, "a share in [0, 1]")
at_least_two = _number(int, 2, None, "an integer >= 2")


def open_share(text: str) -> float:
    """Argparse ``type=``: a share strictly between 0 and 1 (a validation fraction)."""
    value = _number(float, 0.0, 1.0, "a share in (0, 1)")(text)
    if value in (0.0, 1.0):
        raise argparse.ArgumentTypeError(f"got {text}, expected a share in (0, 1), e.g. 0.2")
    return value


def opset(text: str) -> int:
    """Argparse ``type=`` of ``--opset``: an ONNX opset >= 17 (LayerNorm, STFT)."""
    return _number(int, 17, None, "an ONNX opset >= 17")(text)


def port(text: str) -> int:
    """Parse ``--port`` (argparse type): an integer in 0..65535 (0 = any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1..65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port; expected 1..65535")
    return value


def existing_path(text: str) -> str:
    """Argparse ``type=``: a local path that exists (URLs with ``://`` pass unchecked).

    Example:
        >>> existing_path("/no/such/file")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: /no/such/file does not exist
    """
    import os

    if "://" not in text and not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return text


def check_inputs(
    *,
    checkpoint: str | bool | None = False,
    recipe: str | None = None,
    paths: Iterable[tuple[str, str | Iterable[str] | None]] = (),
) -> None:
    """Refuse missing inputs in one line, before torch or any model is loaded.

    Every verb calls it first in its ``run``: parsing stays syntactic (tests and
    ``--help`` parse paths that need not exist), and the run refuses a path that
    is not there before it imports anything heavy. URLs (``://``) pass unchecked.

    Args:
        checkpoint: a ``--checkpoint`` value to resolve with
            :func:`vocalis.inference.locate.resolve_checkpoint` (torch-free);
            ``None``: the bundled model (not checked); ``False``: no checkpoint.
        recipe: a ``--config`` value (a recipe file or name, :func:`vocalis.config.find_recipe`).
        paths: ``(flag, value)`` pairs of files or folders that must exist (a
            value may be a list, or ``None`` when the flag was not given).

    Raises:
        DataError: a path that does not exist.
        ModelError: a checkpoint that is not there.
        ConfigError: an unknown recipe (the message lists the recipes).

    Example:
        >>> check_inputs(paths=[("--manifest", "/no/such.csv")])
        Traceback (most recent call last):
        ...
        vocalis.errors.DataError: --manifest /no/such.csv: no such file or folder
    """
    import os
    from pathlib import Path

    from vocalis.errors import DataError, ModelError

    if checkpoint not in (None, False) and "://" not in str(checkpoint):
        from vocalis.inference.locate import resolve_checkpoint

        resolved = resolve_checkpoint(checkpoint)
        if not Path(resolved).is_file():
            raise ModelError(
                f"--checkpoint {checkpoint}: no such run folder or checkpoint file; pass a run "
                "folder, RUN/model or a checkpoint file"
            )
    for flag, value in paths:
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value or [])
        for item in values:
            if "://" not in str(item) and not os.path.exists(item):
                raise DataError(f"{flag} {item}: no such file or folder")
    if recipe:
        from vocalis.config import find_recipe

        find_recipe(recipe)


def apply_help_style(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and all its sub-parsers (recursively) the :class:`HelpFormatter`."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                apply_help_style(sub)


class ConfigDefault:
    """A default read from a config dataclass when needed (help, or the run itself).

    ``str()`` is the real default (for ``--help``); :func:`resolve_defaults` replaces
    these placeholders in the parsed arguments.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class C:
        ...     rate: int = 16000
        >>> d = ConfigDefault(lambda: C(), "rate")
        >>> str(d), resolve_defaults(argparse.Namespace(rate=d, x=1))
        ('16000', Namespace(rate=16000, x=1))
    """

    def __init__(self, config: Callable[[], Any], field: str) -> None:
        self._config = config
        self.field = field

    def value(self) -> Any:
        """The default value (builds the config)."""
        return getattr(self._config(), self.field)

    def __str__(self) -> str:
        return str(self.value())


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Replace every :class:`ConfigDefault` left in ``args`` by its value (in place)."""
    for name, value in vars(args).items():
        if isinstance(value, ConfigDefault):
            setattr(args, name, value.value())
    return args


def add_progress_arg(parser: argparse.ArgumentParser, what: str = "progress bars") -> None:
    """``--progress`` / ``--no-progress`` of every long verb (default: bars on a terminal only).

    Bars redraw a line with carriage returns on stderr; in a log file or a pipe
    they would fill it, so without either flag they are shown only when stderr
    is a terminal (:func:`progress_wanted`). The per-epoch, per-fold and summary
    lines on stdout are printed either way.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_progress_arg(p)
        >>> progress_wanted(p.parse_args(["--no-progress"])), p.parse_args([]).progress
        (False, None)
    """
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{what} on stderr; --no-progress: none, for logs and batch jobs "
        "(default: only when stderr is a terminal)",
    )


def progress_wanted(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: ``--progress``, ``--no-progress``, else stderr is a TTY."""
    import sys

    value = getattr(args, "progress", None)
    if value is None:
        stream = sys.stderr
        return bool(getattr(stream, "isatty", None) and stream.isatty())
    return bool(value)


def max_failures_arg(text: str) -> float | int:
    """Argparse type of ``--max-failures``: ``0.1`` -> a fraction, ``3`` -> a count.

    Raises:
        argparse.ArgumentTypeError: neither (argparse prints it as one line).
    """
    from vocalis.data.failures import parse_max_failures

    try:
        return parse_max_failures(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected a fraction such as 0.1 or a count such as 3"
        ) from None


def failure_lines(failed: Mapping[str, str], noun: str = "fold") -> list[str]:
    """The ``FAILED`` lines of a summary, one per distinct error (its names listed).

    A config or input problem fails every fold (or sweep point) the same way; it is
    shown once, not ten times.

    Example:
        >>> failure_lines({"s1": "ConfigError: x", "s2": "ConfigError: x", "s3": "OSError: y"})
        ['  folds s1, s2 FAILED: ConfigError: x', '  fold s3 FAILED: OSError: y']
    """
    by_error: dict[str, list[str]] = {}
    for name, err in failed.items():
        by_error.setdefault(str(err), []).append(name)
    return [
        f"  {noun}{'s' if len(names) > 1 else ''} {', '.join(names)} FAILED: {err}"
        for err, names in by_error.items()
    ]
