"""The command line's grammar: every command, its arguments and their help, and nothing else.

The commands that can drive a running API (``train``, ``sweep``, ``operations ...``,
``models list``) take the remote options (``--api URL``, ``--local``);
:func:`ktrdr_lib.cli.backend.api_url` reads them. ``strategies ...`` and ``serve ...`` always
work in this process. :func:`parse_space` reads ``sweep --space PATH=V1,V2`` values.
"""

from __future__ import annotations

import argparse
import datetime
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.schemas.sweeps import SWEEP_METRICS

if TYPE_CHECKING:
    from typing import TypeAlias

    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["build_parser", "parse_space"]

_OPERATION_ID = "the operation's id (see `ktrdr operations list`)"
# What YAML 1.1 reads as text but a user means as a number: 1e-3, -2E5 (no dot).
_EXPONENT = re.compile(r"[-+]?\d+(?:\.\d*)?[eE][-+]?\d+")


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _remote_options() -> argparse.ArgumentParser:
    remote = argparse.ArgumentParser(add_help=False)
    group = remote.add_argument_group("remote API")
    group.add_argument(
        "--api",
        metavar="URL",
        help="drive the KTRDR API at URL (default KTRDR_API_URL; KTRDR_API_TOKEN is sent as "
        "the bearer token)",
    )
    group.add_argument(
        "--local", action="store_true", help="ignore KTRDR_API_URL; work in this process"
    )
    return remote


def _add_train(sub: Subcommands, remote: argparse.ArgumentParser) -> None:
    train = sub.add_parser(
        "train", parents=[remote], help="train a strategy (in this process, or on --api)"
    )
    train.add_argument(
        "strategy",
        nargs="?",
        help="strategy name (see `ktrdr strategies list`) or YAML path; a name with --api",
    )
    train.add_argument(
        "--resume",
        metavar="OPERATION_ID",
        help="continue this cancelled, failed or interrupted run from its last checkpoint",
    )
    train.add_argument("--symbols", type=_csv, help="comma-separated, e.g. AAPL,MSFT")
    train.add_argument("--timeframes", type=_csv, help="comma-separated, e.g. 1h,4h")
    train.add_argument("--start-date", help="first bar, ISO date")
    train.add_argument("--end-date", help="last bar, ISO date")
    train.add_argument("--epochs", type=int, help="override the strategy's epochs")
    train.add_argument("--seed", type=int, help="random seed (default 42)")
    train.add_argument(
        "--data-dir",
        help="OHLCV directory for a run in this process (default KTRDR_DATA_DIR, else the "
        "bundled samples; not with --api: the server reads its own)",
    )
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.add_argument(
        "--no-save",
        action="store_true",
        help="do not save the model (local and ray runs in this process; not with --api or "
        "--mode host, which save every model)",
    )
    train.add_argument(
        "--placebo",
        type=int,
        metavar="N",
        help="after the run, train the same strategy N times on random walks matched to its "
        "data and report its edge over them (the request's placebo_runs; default 0; 3 to 10 "
        "tell a real edge from noise; not with --mode host or --resume)",
    )
    train.add_argument(
        "--analytics",
        action="store_true",
        help="record detailed per-epoch analytics (saved with the model)",
    )
    train.add_argument(
        "--logger",
        action="append",
        choices=("csv", "tensorboard", "mlflow"),
        help="an experiment logger for this run (repeatable; default KTRDR_LOGGERS)",
    )
    train.add_argument(
        "--mode",
        choices=("local", "host", "ray"),
        default=None,
        help="where it trains: local (where the command runs: this process, or the API server "
        "with --api; the default), host (the training host at KTRDR_HOST_URL) or ray (a worker "
        "of the Ray cluster at --ray-address or KTRDR_RAY_ADDRESS); with --api, the server's "
        "host and cluster",
    )
    _ray_options(train, "the run's worker", "with --mode ray")


def _resource(value: str) -> float:
    """A Ray resource amount: a number >= 0 (fractions share a device)."""
    try:
        amount = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not amount >= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is negative; give a number >= 0")
    return amount


def _ray_options(command: argparse.ArgumentParser, who: str, when: str) -> None:
    group = command.add_argument_group(f"Ray ({when})")
    group.add_argument(
        "--num-cpus",
        type=_resource,
        metavar="N",
        help=f"CPUs {who} reserves on the Ray cluster (default 1)",
    )
    group.add_argument(
        "--num-gpus",
        type=_resource,
        metavar="N",
        help=f"GPUs {who} reserves (default 1 when the cluster has GPUs, else 0; fractions "
        "share a GPU)",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the Ray cluster (ray://head:10001, head:6379, auto) or 'local' for a Ray in this "
        "process (default KTRDR_RAY_ADDRESS)",
    )


def _scalar(text: str, flag: str) -> Any:
    """One ``--space`` value as a YAML scalar (a number, true/false, text)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if isinstance(value, str) and _EXPONENT.fullmatch(text.strip()):
        return float(text)
    if isinstance(value, datetime.date):
        return text.strip()  # an ISO date stays the text the strategy file would hold
    if value is None or isinstance(value, list | dict) or not isinstance(value, int | float | str):
        raise ConfigError(
            f"{flag}: {text!r} is not a single value; give numbers, true/false or text "
            "separated by commas (PATH=V1,V2)"
        )
    return value


def parse_space(entries: Sequence[str]) -> dict[str, list[Any]]:
    """``--space PATH=V1,V2`` values as the sweep's space: each path → the values to try.

    Values are YAML scalars: ``0.01`` and ``1e-3`` are numbers, ``true`` is a bool, ``adam``
    is text.

    Raises:
        ConfigError: an entry without ``=``, a path or value left empty, a value that is not
            a scalar, or a path given twice (each named, with what to write instead).

    Example:
        >>> parse_space(["model.training.learning_rate=0.01,1e-3", "epochs=2"])
        {'model.training.learning_rate': [0.01, 0.001], 'epochs': [2]}
    """
    space: dict[str, list[Any]] = {}
    for entry in entries:
        flag = f"--space {entry!r}"
        path, sep, values = entry.partition("=")
        path = path.strip()
        if not sep or not path:
            raise ConfigError(
                f"{flag}: write PATH=V1,V2, e.g. --space model.training.learning_rate=0.01,0.001"
            )
        if path in space:
            raise ConfigError(
                f"--space {path} is given twice; give all its values once: --space {path}=V1,V2,..."
            )
        texts = [part.strip() for part in values.split(",")]
        if not values.strip() or any(not text for text in texts):
            raise ConfigError(f"{flag}: a value is empty; write {path}=V1,V2")
        space[path] = [_scalar(text, flag) for text in texts]
    return space


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be >= 1")
    return number


def _add_sweep(sub: Subcommands, remote: argparse.ArgumentParser) -> None:
    sweep = sub.add_parser(
        "sweep",
        parents=[remote],
        help="train a strategy over a space of settings on Ray and rank the trials",
        description="Train one strategy once per combination of --space values (grid) or per "
        "random draw, on a Ray cluster; show a live table of the trials, then rank them by "
        "--metric and save the best model again under --best-model-name.",
    )
    sweep.add_argument("strategy", help="strategy name (see `ktrdr strategies list`) or YAML path")
    sweep.add_argument(
        "--space",
        action="append",
        required=True,
        metavar="PATH=V1,V2",
        help="a strategy setting and the values to try, e.g. "
        "model.training.learning_rate=0.01,0.001 (repeatable; values are YAML scalars: "
        "numbers, true/false, text)",
    )
    sweep.add_argument(
        "--metric",
        choices=tuple(SWEEP_METRICS),
        default="val_loss",
        help="what ranks the trials (default val_loss)",
    )
    sweep.add_argument(
        "--direction",
        choices=("min", "max"),
        help="whether lower or higher --metric is better (default: min for losses, max for "
        "accuracies)",
    )
    sweep.add_argument(
        "--search",
        choices=("grid", "random"),
        default="grid",
        help="grid: every combination (--samples times); random: --samples draws of one value "
        "per setting (default grid)",
    )
    sweep.add_argument(
        "--samples",
        type=_positive_int,
        metavar="N",
        help="grid: repeats of the whole grid (default 1); random: draws (default 8)",
    )
    sweep.add_argument(
        "--max-concurrent",
        type=_positive_int,
        metavar="N",
        help="trials training at once (default: as many as the cluster's CPUs hold)",
    )
    sweep.add_argument(
        "--early-stop",
        choices=("asha",),
        help="stop trials that fall behind after each epoch (ASHA)",
    )
    sweep.add_argument(
        "--grace-period",
        type=_positive_int,
        metavar="N",
        help="with --early-stop: epochs every trial trains before it may be stopped (default 1)",
    )
    sweep.add_argument(
        "--reduction-factor",
        type=float,
        metavar="F",
        help="with --early-stop: how sharply ASHA halves the trials at each rung (default 2)",
    )
    sweep.add_argument(
        "--best-model-name",
        metavar="NAME",
        help="save the best trial's model again under NAME (default <strategy>_sweep_best)",
    )
    sweep.add_argument("--symbols", type=_csv, help="comma-separated, e.g. AAPL,MSFT")
    sweep.add_argument("--timeframes", type=_csv, help="comma-separated, e.g. 1h,4h")
    sweep.add_argument("--start-date", help="first bar, ISO date")
    sweep.add_argument("--end-date", help="last bar, ISO date")
    sweep.add_argument("--epochs", type=_positive_int, help="every trial's epochs")
    sweep.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    sweep.add_argument(
        "--data-dir",
        help="OHLCV directory for a sweep from this process (default KTRDR_DATA_DIR, else the "
        "bundled samples; not with --api: the server reads its own)",
    )
    sweep.add_argument(
        "--json", action="store_true", help="print the final sweep (trials ranked) as JSON"
    )
    _ray_options(sweep, "each trial's worker", "every sweep runs on Ray")


def _add_strategies(sub: Subcommands) -> None:
    strategies = sub.add_parser("strategies", help="strategy files").add_subparsers(
        dest="action", required=True
    )
    validate = strategies.add_parser(
        "validate", help="check strategy files (any layout): report problems and notices"
    )
    validate.add_argument("files", nargs="+", help="strategy YAML files to check")
    validate.add_argument(
        "--data",
        action="store_true",
        help="also prepare each valid file's data as training would (no fit) and report "
        "inputs that never fire or never change",
    )
    validate.add_argument("--symbols", type=_csv, help="with --data: comma-separated symbols")
    validate.add_argument("--timeframes", type=_csv, help="with --data: comma-separated")
    validate.add_argument("--start-date", help="with --data: first bar, ISO date")
    validate.add_argument("--end-date", help="with --data: last bar, ISO date")
    validate.add_argument("--data-dir", help="with --data: OHLCV directory")
    migrate = strategies.add_parser(
        "migrate", help="print a strategy file (legacy, v2 or v3) in the v3 layout"
    )
    migrate.add_argument("file", help="the strategy YAML file to print in the v3 layout")
    strategies.add_parser("list", help="strategies found by name")


def _add_serve(sub: Subcommands) -> None:
    serve = sub.add_parser("serve", help="run a server").add_subparsers(
        dest="action", required=True
    )
    serve_api = serve.add_parser("api", help="the HTTP API (Litestar under uvicorn)")
    serve_api.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)"
    )
    serve_api.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve_api.add_argument(
        "--local-runner",
        choices=("process", "thread"),
        default=None,
        help="train local runs in a child process each (process) or inside the server process "
        "(thread) (default KTRDR_LOCAL_RUNNER, else process)",
    )
    serve_api.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback address without KTRDR_API_TOKEN (an open API)",
    )
    serve_host = serve.add_parser("host", help="the training host (token in KTRDR_HOST_TOKEN)")
    serve_host.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1: loopback only)"
    )
    serve_host.add_argument("--port", type=int, default=5002, help="TCP port (default 5002)")
    serve_host.add_argument(
        "--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, ..."
    )
    serve_host.add_argument("--devices", default="1", help="device count, 'auto' or '0,1'")
    serve_host.add_argument("--strategy", default="auto", help="Lightning strategy (e.g. ddp)")
    serve_host.add_argument(
        "--precision",
        default=None,
        help="Lightning precision, e.g. bf16-mixed (default: Lightning's)",
    )
    serve_host.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="run without KTRDR_HOST_TOKEN (loopback addresses only)",
    )


def _add_models(sub: Subcommands, remote: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", help="saved models").add_subparsers(
        dest="action", required=True
    )
    models_list = models.add_parser(
        "list",
        parents=[remote],
        help="saved models and versions, oldest first (load_model(name) loads the newest; "
        "version='best' the highest 'val' figure)",
    )
    models_list.add_argument("--json", action="store_true", help="print the list as JSON")


def _add_operations(sub: Subcommands, remote: argparse.ArgumentParser) -> None:
    operations = sub.add_parser(
        "operations", help="training operations (local store, or --api)"
    ).add_subparsers(dest="action", required=True)
    ops_list = operations.add_parser("list", parents=[remote], help="operations, newest first")
    ops_list.add_argument(
        "--status", help="pending, running, completed, failed, cancelled (or cancelling, ...)"
    )
    ops_list.add_argument("--limit", type=int, default=20, help="at most N rows (default 20)")
    ops_list.add_argument("--json", action="store_true", help="print the list as JSON")
    ops_show = operations.add_parser("show", parents=[remote], help="one operation")
    ops_show.add_argument("operation_id", help=_OPERATION_ID)
    ops_show.add_argument("--json", action="store_true", help="print the record as JSON")
    ops_show.add_argument(
        "--analytics",
        action="store_true",
        help="the run's detailed analytics, one line per epoch (with --json: the record)",
    )
    ops_follow = operations.add_parser(
        "follow", parents=[remote], help="show an operation's progress until it ends"
    )
    ops_follow.add_argument("operation_id", help=_OPERATION_ID)
    ops_prune = operations.add_parser(
        "prune",
        help="forget old finished operations and remove checkpoints no run can resume from "
        "(this machine's store)",
    )
    ops_prune.add_argument(
        "--operations-days",
        type=float,
        default=None,
        help="forget finished operations that ended more than this many days ago: record, "
        "epoch history and checkpoints; saved models stay (default KTRDR_KEEP_OPERATIONS_DAYS "
        "or 90)",
    )
    ops_prune.add_argument(
        "--keep-operations",
        type=int,
        default=None,
        help="keep at most this many finished operations, the newest (default "
        "KTRDR_KEEP_OPERATIONS or 10000)",
    )
    ops_prune.add_argument(
        "--keep-days",
        type=float,
        default=None,
        help="keep completed runs' checkpoints this many days (default KTRDR_CHECKPOINT_KEEP_DAYS "
        "or 0)",
    )
    ops_resume = operations.add_parser(
        "resume",
        parents=[remote],
        help="continue a cancelled, failed or interrupted run from its last checkpoint",
    )
    ops_resume.add_argument("operation_id", help=_OPERATION_ID)
    ops_resume.add_argument("--json", action="store_true", help="print the result as JSON")
    ops_cancel = operations.add_parser("cancel", parents=[remote], help="stop an operation")
    ops_cancel.add_argument("operation_id", help=_OPERATION_ID)
    ops_cancel.add_argument(
        "--graceful",
        action="store_true",
        help="finish the current epoch, then evaluate and save (default: abort within one batch)",
    )
    ops_cancel.add_argument("--reason", help="why (stored with the operation)")
    ops_cancel.add_argument(
        "--wait", action="store_true", help="wait until the operation has stopped"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``ktrdr`` parser: ``args.command`` and, below it, ``args.action`` name the command.

    Example:
        >>> args = build_parser().parse_args(["operations", "show", "op_1"])
        >>> args.command, args.action, args.operation_id
        ('operations', 'show', 'op_1')
    """
    parser = argparse.ArgumentParser(prog="ktrdr", description="Train KTRDR strategy models.")
    sub = parser.add_subparsers(dest="command", required=True)
    remote = _remote_options()
    _add_train(sub, remote)
    _add_sweep(sub, remote)
    _add_strategies(sub)
    _add_serve(sub)
    _add_models(sub, remote)
    _add_operations(sub, remote)
    return parser
