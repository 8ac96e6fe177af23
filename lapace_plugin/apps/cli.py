"""The ``lapace`` command: ``lapace demo``, ``lapace bench``, ``lapace study``, the batch commands ``lapace fit`` and
``lapace explain``, and the framework benchmarks."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# command: ("module" or "module:function" taking the command's arguments, one-line help)
COMMANDS = {
    "fit": ("lapace_plugin.apps.batch:fit_main", "fit an explainer for a classifier file on a Parquet/CSV table and save it"),
    "explain": ("lapace_plugin.apps.batch:explain_main",
                "explain every row of a Parquet/CSV file on a Dask cluster into Parquet part files (resumable); "
                "with --global, a few actions covering the refused rows"),
    "demo": ("lapace_plugin.apps.demo", "train a classifier and LAPACE on a bundled dataset and explain 100 refused individuals"),
    "bench": ("lapace_plugin.apps.bench", "time explain against the bare decode + classify floor on 1,000 queries"),
    "study": ("lapace_plugin.apps.study", "comparative study of LAPACE and baselines on the paper's metrics; with --global, "
              "global recourse against AReS and GLOBE-CE"),
    "dice-benchmark": ("lapace_plugin.adapters.dice_benchmark", "seconds per query of LAPACE through DiCE against DiCE's own methods"),
    "carla-benchmark": ("lapace_plugin.adapters.carla_benchmark", "CARLA's Benchmark table for LAPACE and CARLA's baselines (CARLA env)"),
}
GLOBAL = {"explain": "lapace_plugin.apps.global_explain:main", "study": "lapace_plugin.evaluation.global_study:main",
          "bench": "lapace_plugin.apps.global_bench:main"}
"""With ``--global``: ``lapace explain --global`` (a few actions covering the refused), ``lapace study --global`` and
``lapace bench --global``."""


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``lapace`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lapace",
        description="LAPACE counterfactual explanations: demos, benchmarks and comparative studies.",
        epilog="Run 'lapace COMMAND --help' for the options of a command.",
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
