"""A batch run's output folder: its layout, the manifest that records every part written, resuming, and what
``overwrite`` may delete.

Layout of ``OUTPUT`` (read ``OUTPUT/counterfactuals`` and ``OUTPUT/failures`` as Parquet datasets)::

    OUTPUT/counterfactuals/part-000000.parquet ...  the counterfactuals, one part per piece
    OUTPUT/failures/part-000000.parquet ...         the rows without a counterfactual (query, reason, stage)
    OUTPUT/_lapace_run.json                         the manifest: the run's identity and each part's rows and SHA-256
    OUTPUT/_lapace.lock                             while a run writes: its pid, host and start time

A rerun of the same run keeps the parts whose files match the manifest and redoes the others; ``overwrite``
deletes only the files the manifest's run wrote. A folder holding anything else is refused
(:func:`lapace_plugin.files.check_output_folder`).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Set

import numpy as np
import pandas as pd

from ..errors import InvalidParameterError
from ..files import check_output_folder, read_json, remove_owned, write_json
from .partition import ID

MANIFEST = "_lapace_run.json"
LOCK = "_lapace.lock"
KINDS = ("counterfactuals", "failures")
FORMAT = 2
# the lock, and the temporary files of write_part, write_json and FolderLock
_OURS = re.compile(r"^(\.(part-\d{6}\.parquet|%s)\.[0-9a-f]{32}\.tmp|%s(\.[0-9a-f]{32}\.(tmp|stale))?)$" % (re.escape(MANIFEST), re.escape(LOCK)))


def part_name(number: int) -> str:
    return "part-%06d.parquet" % number


def counterfactuals_path(output: str) -> str:
    """The folder of the counterfactuals' part files of an output folder."""
    return os.path.join(output, "counterfactuals")


def failures_path(output: str) -> str:
    """The folder of the failures' part files of an output folder."""
    return os.path.join(output, "failures")


def owned(folder: str) -> Set[str]:
    """The files in ``folder`` that a batch run wrote: those of the run its manifest describes, our lock and
    temporary files (see the module's layout)."""
    present = set()
    for sub in ("",) + tuple(kind + "/" for kind in KINDS):
        path = os.path.join(folder, sub)
        if os.path.isdir(path):
            present.update(sub + name for name in os.listdir(path) if _OURS.match(name))
    manifest = os.path.join(folder, MANIFEST)
    if not os.path.exists(manifest):
        return present
    run = _manifest(folder)["run"]
    parts = [part_name(n) for n in range(int(run.get("pieces", 0)))]
    return present | {MANIFEST} | {kind + "/" for kind in KINDS} | {"%s/%s" % (kind, p) for kind in KINDS for p in parts}


def _manifest(folder: str) -> Dict[str, Any]:
    path = os.path.join(folder, MANIFEST)
    manifest = read_json(path, "the manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("run"), dict):
        raise InvalidParameterError("%r was written by another version of lapace (manifest %s); delete that folder yourself or "
                                    "write into another one" % (folder, path))
    return manifest


def check_output(output: Any, inputs: Mapping[str, Optional[str]] = (), option: str = "output") -> List[str]:
    """Refuse an output folder that is the current directory, an input (or holds one, or lies in one) or holds files
    no batch run wrote; return the files a run wrote there. Call it before any cluster starts."""
    return check_output_folder(output, option=option, owned=owned, inputs=inputs, what="lapace explain")


class Output(NamedTuple):
    """Where a run writes its Parquet part files, their Arrow schemas, and the manifest's part records."""

    folder: str
    counterfactual_schema: Any
    failure_schema: Any
    manifest: Dict[str, Any]

    def part(self, kind: str, number: int) -> str:
        """Path of part ``number`` of ``kind`` (``"counterfactuals"`` or ``"failures"``)."""
        return os.path.join(self.folder, kind, part_name(number))

    def record(self, number: int, entry: Dict[str, Any]) -> None:
        """Record a written part in the manifest (rewritten atomically)."""
        parts = dict(self.manifest["parts"], **{str(number): entry})
        self.manifest["parts"] = {k: parts[k] for k in sorted(parts, key=int)}
        write_json(os.path.join(self.folder, MANIFEST), self.manifest)

    def verified(self) -> List[int]:
        """Parts whose files match the manifest (rows and SHA-256): an earlier run's parts a resume keeps."""
        keep = []
        for key, entry in sorted(self.manifest["parts"].items(), key=lambda kv: int(kv[0])):
            number = int(key)
            if all(os.path.isfile(self.part(kind, number)) and file_sha256(self.part(kind, number)) == entry[kind]["sha256"]
                   for kind in KINDS):
                keep.append(number)
        self.manifest["parts"] = {str(n): self.manifest["parts"][str(n)] for n in keep}
        return keep


def prepare(output: str, run: Dict[str, Any], overwrite: bool, template: pd.DataFrame) -> Output:
    """Under the folder's lock: check the folder again, delete the earlier run's files (``overwrite``) or check that the folder
    holds the same run (to resume), and write the manifest."""
    import pyarrow as pa

    present = check_output(output)
    if overwrite:
        remove_owned(output, [f for f in present if f != LOCK])
    parts: Dict[str, Any] = {}
    if os.path.exists(os.path.join(output, MANIFEST)):
        previous = _manifest(output)
        changed = sorted(k for k in set(run) | set(previous["run"]) if run.get(k) != previous["run"].get(k))
        if changed:
            raise InvalidParameterError("%r holds a run with different %s; resume only the same run, or pass overwrite=True "
                                        "(--overwrite) or another output folder" % (output, ", ".join(changed)))
        parts = previous.get("parts") or {}
    for kind in KINDS:
        os.makedirs(os.path.join(output, kind), exist_ok=True)
    manifest = {"format": FORMAT, "written_by": "lapace explain", "run": run, "parts": parts}
    write_json(os.path.join(output, MANIFEST), manifest)
    counterfactual_schema = pa.Schema.from_pandas(template, preserve_index=False)
    counterfactual_schema = counterfactual_schema.set(counterfactual_schema.get_field_index(ID), pa.field(ID, _id_type(template[ID].dtype)))
    failure_schema = pa.schema([(ID, _id_type(template[ID].dtype)), ("reason", pa.string()), ("stage", pa.string())])
    return Output(output, _text_columns(counterfactual_schema, template), failure_schema, manifest)


def write_part(frame: pd.DataFrame, path: str, schema: Any) -> Dict[str, Any]:
    """Write a Parquet file atomically (a hidden temporary file, then a rename: a retried task overwrites it); its
    rows and SHA-256."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder, name = os.path.split(path)
    tmp = os.path.join(folder, ".%s.%s.tmp" % (name, uuid.uuid4().hex))
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), tmp)
    sha = file_sha256(tmp)
    os.replace(tmp, path)
    return {"rows": len(frame), "sha256": sha}


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _id_type(dtype: Any) -> Any:
    import pyarrow as pa

    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return pa.from_numpy_dtype(np.dtype(dtype))
    return pa.string()


def _text_columns(schema: Any, template: pd.DataFrame) -> Any:
    """The Arrow schema with string (not null) types for the template's empty text columns."""
    import pyarrow as pa

    for name in template.columns:
        i = schema.get_field_index(name)
        if pa.types.is_null(schema.field(i).type):
            schema = schema.set(i, pa.field(name, pa.string()))
    return schema
