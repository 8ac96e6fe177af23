"""Helpers of the adversarial batch CLI cases (a module of its own: ``conftest`` names are ambiguous across folders)."""

from __future__ import annotations

import os
from typing import Dict

import pandas as pd

from lapace_plugin.apps import cli


def refused(capsys, args, *fragments):
    """Run the CLI, expect exit 2 and one line on stderr containing every fragment."""
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if "error" in line]) == 1, err
    for fragment in fragments:
        assert fragment in err[-1], err
    return err[-1]


def snapshot(folder: str) -> Dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
    return out


def read(folder: str) -> pd.DataFrame:
    frame = pd.read_parquet(folder)
    return frame.sort_values([c for c in ("query", "rank") if c in frame.columns]).reset_index(drop=True)
