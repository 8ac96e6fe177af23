"""Safety of the folders the commands write: a folder is written only when nothing of the user's is at risk.

:func:`check_output_folder` refuses, with one line naming the conflict, an output folder that is the current
directory or contains it, is (or contains, or lies inside) an input, or holds files that the command did not write
(recognised by what ``owned`` says the folder's marker lists). :func:`remove_owned` deletes only those files, never
anything else. :class:`FolderLock` keeps one run at a time per folder. ``lapace explain`` (the manifest
``_lapace_run.json``), ``lapace fit`` (a saved explainer) and ``lapace study`` (its ``config.json``) share them.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import Any, Callable, Iterable, List, Mapping, Optional, Set, Tuple

from .errors import InvalidParameterError

Owned = Callable[[str], Optional[Set[str]]]
"""``owned(folder)``: the relative paths (``/``-separated) in ``folder`` the command wrote, ``None`` when the folder
carries none of its markers."""


class FolderError(InvalidParameterError):
    """An output folder refused because writing there could change or delete files the command did not write."""


def _inside(path: str, folder: str) -> bool:
    """Whether real path ``path`` is ``folder`` or lies under it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _relation(output: str, other: str) -> Optional[str]:
    if output == other:
        return "is"
    if _inside(other, output):
        return "contains"
    if _inside(output, other) and os.path.isdir(other):
        return "lies inside"
    return None


def listing(folder: str) -> List[str]:
    """Every file and empty folder under ``folder``, relative and ``/``-separated, sorted."""
    out = []
    for root, dirs, names in os.walk(folder):
        rel = os.path.relpath(root, folder)
        for name in names:
            out.append(name if rel == "." else "%s/%s" % (rel.replace(os.sep, "/"), name))
        if not dirs and not names and rel != ".":
            out.append(rel.replace(os.sep, "/") + "/")
    return sorted(out)


def check_output_folder(
    path: str, *, option: str, owned: Owned, inputs: Mapping[str, Optional[str]] = (), what: str = "lapace"
) -> List[str]:
    """Refuse an output folder where writing could touch a file the command did not write; return the files in it
    that it did write (what ``--overwrite`` may remove).

    Parameters
    ----------
    path
        The output folder (need not exist).
    option
        Its option name for messages, e.g. ``"--output"``.
    owned
        See :data:`Owned`.
    inputs
        ``{option: path}`` of everything the command reads (input, model, explainer folder...): the output may not
        be one of them, contain one, or lie inside one that is a folder. ``None`` values are skipped.
    what
        The command, for messages (``"lapace explain"``).

    Raises
    ------
    FolderError
        One line naming the conflict.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise FolderError("%s must be a folder path, got %r" % (option, path))
    real = os.path.realpath(os.fspath(path))
    if os.path.exists(real) and not os.path.isdir(real):
        raise FolderError("%s %r is a file, not a folder" % (option, path))
    cwd = os.path.realpath(os.getcwd())
    if _inside(cwd, real):
        raise FolderError("%s %r %s the current directory; write into a new folder, e.g. %s"
                          % (option, path, "is" if cwd == real else "contains", os.path.join(os.fspath(path), "lapace-output")))
    for name, other in dict(inputs).items():
        if other is None:
            continue
        relation = _relation(real, os.path.realpath(os.fspath(other)))
        if relation:
            raise FolderError("%s %r %s the %s %r; write into another folder" % (option, path, relation, name, other))
    if not os.path.isdir(real):
        return []
    present = listing(real)
    if not present:
        return []
    ours = owned(real)
    if ours is None:
        raise FolderError("%s %r holds files not written by %s (%s); write into a new or empty folder"
                          % (option, path, what, ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")))
    foreign = [f for f in present if f not in ours]
    if foreign:
        raise FolderError("%s %r holds files %s did not write (%s); move them or write into another folder"
                          % (option, path, what, ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")))
    return present


def remove_owned(folder: str, files: Iterable[str]) -> None:
    """Delete ``files`` (relative paths from :func:`check_output_folder`) and the subfolders they leave empty."""
    parents = set()
    for rel in files:
        path = os.path.join(folder, *rel.rstrip("/").split("/"))
        if rel.endswith("/"):
            parents.add(path)
        elif os.path.lexists(path):
            os.remove(path)
        parent = os.path.dirname(path)
        while _inside(parent, folder) and parent != folder:
            parents.add(parent)
            parent = os.path.dirname(parent)
    for sub in sorted(parents, key=len, reverse=True):
        if os.path.isdir(sub) and not os.listdir(sub):
            os.rmdir(sub)


def read_json(path: str, what: str) -> Any:
    """The JSON in ``path``; an ``InvalidParameterError`` naming the file (and ``what`` it is) when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except ValueError as exc:
        raise InvalidParameterError("%s %r is not valid JSON (%s)" % (what, path, exc)) from None
    except OSError as exc:
        raise InvalidParameterError("cannot read %s %r: %s" % (what, path, exc.strerror or exc)) from None


def write_json(path: str, value: Any) -> None:
    """Write JSON atomically: a hidden temporary file in the same folder, then a rename."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, ".%s.%s.tmp" % (name, uuid.uuid4().hex))
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=1)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


class FolderLock:
    """One run at a time in a folder: a lock file holding the run's pid, host and start time.

    Taken with ``with FolderLock(path, option):``; refused (``FolderError``) while another live process holds it; a
    lock left by a process that no longer runs on this host is taken over.
    """

    def __init__(self, path: str, option: str = "--output") -> None:
        self.path, self.option, self.held = path, option, False

    def _holder(self) -> Tuple[Optional[dict], bool]:
        """The lock file's content and whether its process is gone (a stale lock)."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                holder = json.load(fh)
            pid, host = int(holder["pid"]), holder["host"]
        except FileNotFoundError:
            return None, False
        except (ValueError, KeyError, TypeError, OSError):  # half-written or foreign: ours only if very old
            return {"pid": "?", "host": "?", "started": "?"}, time.time() - os.path.getmtime(self.path) > 60
        return holder, host == socket.gethostname() and not _alive(pid)

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        tmp = "%s.%s.tmp" % (self.path, uuid.uuid4().hex)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        try:
            for _ in range(5):
                try:
                    os.link(tmp, self.path)  # atomic: fails if a lock exists
                    self.held = True
                    return
                except FileExistsError:
                    holder, stale = self._holder()
                    if holder is not None and not stale:
                        raise FolderError(
                            "%s %r is in use by another run (pid %s on %s, started %s); wait for it to finish or stop it "
                            "(if it is gone, delete %s)" % (self.option, os.path.dirname(self.path), holder["pid"],
                                                            holder["host"], holder["started"], self.path)) from None
                    try:  # stale: move it aside (only one taker succeeds), then retry
                        os.rename(self.path, "%s.%s.stale" % (self.path, uuid.uuid4().hex))
                    except FileNotFoundError:
                        pass
                    for name in os.listdir(os.path.dirname(self.path) or "."):
                        if name.startswith(os.path.basename(self.path)) and name.endswith(".stale"):
                            os.remove(os.path.join(os.path.dirname(self.path), name))
            raise FolderError("could not take the lock %s" % self.path)
        finally:
            os.remove(tmp)

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


__all__ = ["FolderError", "FolderLock", "check_output_folder", "listing", "read_json", "remove_owned", "write_json"]
