"""Find strategy files by name or path, and list the strategies that can be found.

A *name* (``rsi_mean_reversion``) is looked up as ``{name}.yaml`` then ``{name}.yml`` in each of
:func:`ktrdr_lib.paths.strategies_dirs`, in order: the directories in ``KTRDR_STRATEGIES_DIR``
first, then the examples shipped with the package, so a user's file shadows a shipped one of
the same name. A *path* is used as given.

Names that arrive over HTTP must never reach the file system as paths: the API calls
:func:`resolve_strategy_name`, which accepts names only. :func:`resolve_strategy` is the
friendlier entry point for Python and the command line.

Example:
    >>> resolve_strategy("rsi_mean_reversion").name
    'rsi_mean_reversion.yaml'
"""

from __future__ import annotations

import os
from pathlib import Path

from ktrdr_lib.errors import ConfigError, KtrdrError, StrategyError, StrategyNotFoundError
from ktrdr_lib.paths import strategies_dirs
from ktrdr_lib.schemas.strategies import StrategyListing
from ktrdr_lib.strategy.loader import is_strategy_file_path, load_strategy
from ktrdr_lib.strategy.spec import STRATEGY_NAME_PATTERN

__all__ = ["list_strategies", "resolve_strategy", "resolve_strategy_name"]

_SUFFIXES = (".yaml", ".yml")


def _looks_like_path(name_or_path: str | os.PathLike[str]) -> bool:
    """A PathLike, or text with a path separator or a YAML suffix."""
    if is_strategy_file_path(name_or_path):
        return True
    text = str(name_or_path)
    separators = [os.sep, "/"] + ([os.altsep] if os.altsep else [])
    return any(separator in text for separator in separators)


def resolve_strategy_name(name: str) -> Path:
    """The file of the strategy called ``name``; never treats ``name`` as a path.

    Args:
        name: a strategy name: letters, digits, ``.``, ``_`` and ``-``, starting with a
            letter or digit (``v15_rsi_zigzag_1.5``).

    Returns:
        The first ``{name}.yaml`` / ``{name}.yml`` found in the strategies directories.

    Raises:
        ConfigError: ``name`` is not a valid name (for example ``..``, ``a/b`` or
            ``x.yaml``).
        StrategyNotFoundError: no directory holds it; ``searched`` lists every file tried.

    Example:
        >>> resolve_strategy_name("macd_trend").stem
        'macd_trend'
    """
    if (
        not isinstance(name, str)
        or not STRATEGY_NAME_PATTERN.fullmatch(name)
        or name.lower().endswith(_SUFFIXES)
    ):
        raise ConfigError(
            f"Strategy name {name!r} is not valid: a name is letters, digits, '.', '_' and "
            "'-', starting with a letter or digit (e.g. rsi_mean_reversion); it cannot be a "
            "path."
        )
    searched: list[str] = []
    for directory in strategies_dirs():
        for suffix in _SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
            searched.append(str(candidate))
    raise StrategyNotFoundError(name, searched)


def resolve_strategy(name_or_path: str | os.PathLike[str]) -> Path:
    """The strategy file for a name or an explicit path.

    A PathLike, or a string containing a path separator or ending ``.yaml``/``.yml``, is a
    path and is used as given; anything else is a name for :func:`resolve_strategy_name`.

    Args:
        name_or_path: ``"rsi_mean_reversion"``, ``"./mine.yaml"`` or a ``Path``.

    Returns:
        The path of an existing file.

    Raises:
        StrategyNotFoundError: the path does not exist, or no directory holds the name.
        ConfigError: a name that is not a valid strategy name.

    Example:
        >>> resolve_strategy("rsi_mean_reversion").suffix
        '.yaml'
    """
    if not _looks_like_path(name_or_path):
        return resolve_strategy_name(str(name_or_path))
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise StrategyNotFoundError(str(name_or_path), [str(path.absolute())])
    return path


def _listing(name: str, path: Path) -> StrategyListing:
    """Load one file into a listing; problems are recorded, never raised."""
    problems: list[str]
    try:
        spec = load_strategy(path)
    except StrategyError as error:
        problems = [problem.render() for problem in error.problems]
    except KtrdrError as error:
        problems = [error.detail]
    else:
        return StrategyListing(
            name=name,
            path=str(path),
            description=spec.description,
            symbols=spec.default_symbols(),
            timeframes=spec.default_timeframes(),
            valid=True,
            problems=[],
        )
    return StrategyListing(
        name=name,
        path=str(path),
        description=None,
        symbols=[],
        timeframes=[],
        valid=False,
        problems=problems,
    )


def _strategy_files(directory: Path) -> list[Path]:
    """YAML files in ``directory``, ``.yaml`` before ``.yml`` for the same name."""
    if not directory.is_dir():
        return []
    files = [path for path in directory.iterdir() if path.suffix in _SUFFIXES and path.is_file()]
    return sorted(files, key=lambda path: (path.stem, _SUFFIXES.index(path.suffix)))


def list_strategies() -> list[StrategyListing]:
    """Every strategy in the strategies directories, sorted by name.

    A name found in an earlier directory shadows the same name further down, exactly as
    :func:`resolve_strategy_name` resolves it. A file that does not load is listed with
    ``valid=False`` and its problems; it never stops the listing. Files whose names are not
    valid strategy names cannot be resolved and are left out.

    Returns:
        One :class:`StrategyListing` per resolvable name.

    Example:
        >>> "macd_trend" in [item.name for item in list_strategies()]
        True
    """
    found: dict[str, StrategyListing] = {}
    for directory in strategies_dirs():
        for path in _strategy_files(directory):
            name = path.stem
            if name not in found and STRATEGY_NAME_PATTERN.fullmatch(name):
                found[name] = _listing(name, path)
    return [found[name] for name in sorted(found)]
