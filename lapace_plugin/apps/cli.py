"""The ``lapace`` command: ``lapace demo``, ``lapace bench``, ``lapace study``, the batch commands ``lapace fit`` and
``lapace explain``, and the framework benchmarks."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Any, List, Optional

# command: ("module" or "module:function" taking the command's arguments, one-line help)
COMMANDS = {
    "fit": ("lapace_plugin.apps.batch:fit_main", "fit an explainer for a classifier file on a Parquet/CSV table and save it"),
    "explain": ("lapace_plugin.apps.batch:explain_main",
                "explain every row of a Parquet/CSV file on a Dask cluster into Parquet part files (resumable); "
                "with --global, a few actions covering the refused rows"),
    "demo": ("lapace_plugin.apps.demo", "train a classifier and LAPACE on a bundled dataset and explain 100 refused individuals"),
    "bench": ("lapace_plugin.apps.bench",
              "time explain against the bare decode + classify floor on 1,000 queries (--fit: the fit against a plain training loop)"),
    "study": ("lapace_plugin.apps.study", "comparative study of LAPACE and baselines on the paper's metrics; with --global, "
              "global recourse against AReS and GLOBE-CE"),
    "dice-benchmark": ("lapace_plugin.adapters.dice_benchmark", "seconds per query of LAPACE through DiCE against DiCE's own methods"),
    "carla-benchmark": ("lapace_plugin.adapters.carla_benchmark", "CARLA's Benchmark table for LAPACE and CARLA's baselines (CARLA env)"),
}
GLOBAL = {"explain": "lapace_plugin.apps.global_explain:main", "study": "lapace_plugin.evaluation.global_study:main",
          "bench": "lapace_plugin.apps.global_bench:main"}
"""With ``--global``: ``lapace explain --global`` (a few actions covering the refused), ``lapace study --global`` and
``lapace bench --global``."""


EXIT_CODES = (
    "Exit codes: 0 done (for 'lapace explain', rows without a counterfactual are listed with their reason, not an "
    "error); 1 the run failed; 2 bad usage or input, refused before anything is written; 130 interrupted (rerun the "
    "same command to resume). Errors are one line on stderr; add --debug to any command for the traceback."
)
USER_ERRORS = (ValueError, TypeError, LookupError, OSError, ImportError)  # bad options, files, data, models or addresses


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (an ``InvalidParameterError``, exit code 2 in :func:`main`)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        from ..errors import InvalidParameterError

        raise InvalidParameterError("%s (see %s --help)" % (message, self.prog))


def _one_line(message: Any, category: Any, *args: Any, **kwargs: Any) -> str:
    return "lapace: warning: %s\n" % " ".join(str(message).split())


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``lapace`` console script: every error is one line on stderr (``--debug``: the traceback)
    and the exit code says what happened (:data:`EXIT_CODES`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    name = argv[0] if argv and argv[0] in COMMANDS else "lapace"
    shown = warnings.formatwarning
    warnings.formatwarning = _one_line
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print("lapace %s: interrupted" % name, file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
        if debug:
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        print("lapace %s: error: %s" % (name, text), file=sys.stderr)
        return 2 if isinstance(exc, USER_ERRORS) else 1
    finally:
        warnings.formatwarning = shown


def _dispatch(argv: List[str]) -> int:
    parser = Parser(
        prog="lapace",
        description="LAPACE counterfactual explanations: demos, benchmarks and comparative studies.",
        epilog="Run 'lapace COMMAND --help' for the options of a command. " + EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 0
    route = GLOBAL[argv[0]] if argv[0] in GLOBAL and "--global" in argv[1:] else COMMANDS[argv[0]][0]
    module, _, function = route.partition(":")
    return int(getattr(importlib.import_module(module), function or "main")(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
