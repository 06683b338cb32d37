"""FeedPipeline: writes the items that survive the user pipelines to a file (FEEDS, `-o`/`-O`).

The pipeline manager builds one per FEEDS entry, after the PIPELINES stages, and reads
FEED_EXPORT_FIELDS for the fields. The format comes from the entry or the file extension of
the name given (a symlink `items.jsonl -> real.csv` gets JSON lines). Appending (`-o`) writes
to the file itself and keeps it valid. Overwriting (`-O`) writes a temporary file beside the
target and replaces the target only when the feed closes, so a run that fails before its first
item (a failed login, an unreachable site) keeps yesterday's file; a symlink is kept and its
target replaced.

The temporary file is `.NAME.<pid>.<random>.part`, and its writer holds an flock on it while
it writes. A crawl killed with SIGKILL leaves it behind; the next overwrite of the same feed
removes such files, but only those whose writer process is gone and whose lock nobody holds
(so never the file of a live crawl, even one in another PID namespace sharing the folder).

Resuming. With a durable frontier the outbox reader asks each feed for its mark (`mark()`:
flush, fsync, the last item seq and the file's size) and records it in the frontier. A
resumed crawl hands the feed its mark before `open()`: the feed truncates the file it wrote
(an overwrite's `.part`, kept for it, or the target if the last run closed) to the recorded
size, which drops a torn tail and a JSON `]`, and skips the replayed items it already holds.
A file that is shorter than the mark or is not the same file stops the crawl (one line,
exit 2); it is never truncated. So does a feed left out of a run of the crawl that delivered
items past its mark (they went to the other feeds, and their outbox rows are gone).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from scrapekit._types import ItemLike
from scrapekit.exceptions import FeedNotResumable, FeedUnwritable
from scrapekit.items import current_seq, to_dict
from scrapekit.pipelines.exporters import Exporter, exporter_for, feed_format
from scrapekit.scheduler.frontier.base import FeedMark

log = structlog.get_logger(__name__)

_TAIL = 4096  # bytes before a feed's mark whose digest is recorded with it


class FeedPipeline:
    """Exports every item it sees to one file, streaming; the file is complete after close().

    Raises `ComponentError` at construction for an unknown format or extension, and
    `PipelineError` at open when appending to a file that cannot be continued.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool,
        format: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.format = feed_format(self.path, format)
        self.fields = list(fields) if fields else None
        self.failed = False
        """Set when the crawl failed: an overwrite that got no item then keeps the old file."""
        self.items_written = 0
        """Items now in the file from this crawl (0 when an overwrite kept the old file)."""
        self._exporter: Exporter | None = None
        self._target: Path | None = None
        self._lock: int | None = None  # open on the temporary file, locked while we write
        self._resume: FeedMark | None = None
        self._written_before = 0  # items in the file from the runs before this one
        self._skip_upto = 0  # replayed items up to this seq are in the file already
        self.seq = 0
        """The last item seq this feed has seen (written, or held from an earlier run)."""

    @property
    def key(self) -> str:
        """What the feed's mark is recorded under: its resolved target path."""
        return os.fspath(self.path.resolve())

    def resume(self, mark: FeedMark | None) -> None:
        """Continue the file an unfinished crawl wrote, as `mark` recorded it (before open)."""
        self._resume = mark
        if mark is not None:
            self._skip_upto = self.seq = mark.seq

    def __repr__(self) -> str:
        mode = "overwrite" if self.overwrite else "append"
        return f"FeedPipeline({os.fspath(self.path)!r}, format={self.format!r}, {mode})"

    def open(self, spider: Any) -> None:
        """Open the file (an overwrite: a temporary one beside it); an append checks that the
        existing file can be continued."""
        if self._resume is not None and self._continue(self._resume):
            return
        path = self.path
        try:
            if self.overwrite:
                # Resolved so that a symlink stays a symlink: its target is what gets replaced.
                self._target = self.path.resolve()
                self._target.parent.mkdir(parents=True, exist_ok=True)
                _remove_stale_parts(self._target)
                path, self._lock = _create_temp(self._target)
            try:
                self._exporter = exporter_for(
                    path, self.format, overwrite=self.overwrite, fields=self.fields
                )
            except BaseException:
                if self.overwrite:
                    path.unlink(missing_ok=True)
                    self._unlock()
                raise
        except OSError as exc:
            raise FeedUnwritable(os.fspath(self.path), _why_unwritable(self.path, exc)) from exc
        log.debug(
            "feed opened", path=os.fspath(self.path), format=self.format, overwrite=self.overwrite
        )

    def _continue(self, mark: FeedMark) -> bool:
        """Truncate the file of an unfinished crawl to its mark and go on writing it.

        Return False when there is nothing to continue (its file is gone and held no item):
        the feed then opens as new. Raises FeedNotResumable if the file is not as it was left.
        """
        state = json.loads(mark.state)
        if state.get("missed"):
            raise FeedNotResumable(
                os.fspath(self.path),
                "runs of this crawl without it delivered the items after its mark elsewhere",
                fix="write to another file, or start the crawl over with --fresh (FRESH)",
            )
        if state.get("format", self.format) != self.format:
            raise FeedNotResumable(
                os.fspath(self.path),
                f"it holds {state['format']} and this run would add {self.format}",
                fix=f"give it format {state['format']!r} again, or write to another file",
            )
        written = Path(state["file"])
        target = self.path.resolve()
        identity = (state["dev"], state["ino"])
        if not written.exists() and written != target and _identity(target) == identity:
            written = target  # the last run closed: its part file became the target
        if not written.exists():
            if not state["items"]:
                return False
            raise FeedNotResumable(os.fspath(self.path), f"its file {written} is missing")
        size = written.stat().st_size
        if size < mark.offset:  # checked first: the tail cannot be read then
            raise FeedNotResumable(
                os.fspath(self.path),
                f"{written} is shorter ({size} bytes) than the {mark.offset} bytes written",
            )
        if _identity(written) != identity or _tail(written, mark.offset) != state["tail"]:
            raise FeedNotResumable(
                os.fspath(self.path), f"{written} is not the file the unfinished crawl wrote"
            )
        if written != target:
            self._target, self._lock = target, _lock_part(written, self.path)
        try:
            os.truncate(written, mark.offset)
            self._exporter = exporter_for(
                written, self.format, overwrite=False, fields=self.fields,
                resume=state["exporter"],
            )  # fmt: skip
        except BaseException:
            self._unlock()
            raise
        if self.overwrite:
            _remove_stale_parts(target)  # ours is locked: left alone
        self._written_before = int(state["items"])
        log.info(
            "feed resumed", path=os.fspath(self.path), file=os.fspath(written), seq=mark.seq,
            offset=mark.offset,
        )  # fmt: skip
        return True

    def process_item(self, item: ItemLike, spider: Any) -> ItemLike:
        """Write the item as one record and pass it on unchanged (unless the file holds it
        already: a replayed item at or before the feed's mark)."""
        if self._exporter is None:
            raise RuntimeError(f"{self!r} got an item before open() or after close()")
        seq = current_seq()
        if seq is not None:
            if seq <= self._skip_upto:
                return item
            self.seq = seq
        self._exporter.write(to_dict(item))
        return item

    def mark(self, delivered: int) -> FeedMark | None:
        """Flush the file and say how far it goes, for the items up to `delivered` (the
        caller fsyncs `fileno()` before recording it); None if the feed is not open or not a
        regular file (a pipe or a device cannot be truncated and continued)."""
        exporter = self._exporter
        if exporter is None:
            return None
        offset = exporter.sync()
        self.seq = max(self.seq, delivered)
        info = os.fstat(exporter.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        state = {
            "file": os.fspath(exporter.path.resolve()),
            "format": self.format,
            "dev": info.st_dev,
            "ino": info.st_ino,
            "tail": _tail(exporter.path, offset),
            "items": self._written_before + exporter.items_written,
            "exporter": exporter.state(),
        }
        return FeedMark(self.key, self.seq, offset, json.dumps(state))

    def fileno(self) -> int | None:
        """The open file's descriptor (to fsync), or None."""
        return None if self._exporter is None else self._exporter.fileno()

    def close(self, spider: Any) -> None:
        """Finish the file (JSON's closing bracket), flush and fsync it; an overwrite then
        replaces the target, unless the crawl failed before any item. Safe to call twice."""
        exporter, self._exporter = self._exporter, None
        if exporter is None:
            return
        target = self._target
        try:
            exporter.close(fsync=True)
        except BaseException:
            if target is not None:
                exporter.path.unlink(missing_ok=True)  # the old file stays as it was
            self._unlock()
            raise
        try:
            self._finish(exporter, target)
        finally:
            self._unlock()

    def _finish(self, exporter: Exporter, target: Path | None) -> None:
        """Count the items; an overwrite replaces the target or, failed early, keeps it."""
        if target is None:
            self.items_written = exporter.items_written
        elif self.failed and not (exporter.items_written or self._written_before):
            exporter.path.unlink(missing_ok=True)
            log.warning(
                "feed kept",
                path=os.fspath(self.path),
                reason="the crawl failed before any item; the previous file is unchanged",
            )
            return
        else:
            _replace(exporter.path, target)
            self.items_written = exporter.items_written
        log.info("feed written", path=os.fspath(self.path), items=exporter.items_written)

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)  # releases the flock


def missed(mark: FeedMark) -> bool:
    """Whether a run without the feed delivered items past its mark (it cannot resume)."""
    return bool(json.loads(mark.state).get("missed"))


def mark_missed(mark: FeedMark) -> FeedMark:
    """The mark of a feed that is not among a run's feeds, once that run's items pass it:
    recorded with the outbox rows' deletion, so the feed never resumes with a gap."""
    state = json.loads(mark.state)
    state["missed"] = True
    return FeedMark(mark.key, mark.seq, mark.offset, json.dumps(state))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _tail(path: Path, offset: int) -> str:
    """A digest of the file's last bytes before `offset`: it is still the file that was left
    (an inode number alone may be reused by a file put in its place)."""
    size = min(offset, _TAIL)
    with path.open("rb") as file:
        file.seek(offset - size)
        return hashlib.blake2b(file.read(size), digest_size=16).hexdigest()


def _lock_part(part: Path, feed: Path) -> int:
    """Take the flock of an unfinished crawl's part file, to go on writing it."""
    fd = os.open(part, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise FeedNotResumable(
            os.fspath(feed), f"{part} is locked by another running crawl"
        ) from None
    return fd


def _remove_stale_parts(target: Path) -> None:
    """Remove the temporary files of `target` that crawls killed with SIGKILL left behind.

    Only files named with a pid that is not running here, and whose flock can be taken (no
    live writer anywhere holds it); a file of an older version, without a pid, is left alone.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]+\.part")
    try:
        parts = [(p, pattern.fullmatch(p.name)) for p in target.parent.iterdir()]
    except OSError:
        return  # an unreadable folder: opening the feed says so, if it matters
    for part, match in parts:
        if match is None or _running(int(match.group(1))):
            continue
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue  # gone already, or not ours to read: leave it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            part.unlink(missing_ok=True)
            log.info("stale part file removed", path=os.fspath(part))
        except OSError:
            continue  # locked: a live writer (another host, another PID namespace) has it
        finally:
            os.close(fd)


def _running(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (ours counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no pid is that large
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


def _create_temp(target: Path) -> tuple[Path, int]:
    """A new empty file beside `target` (same filesystem, so the final rename is atomic).

    It gets the permissions the target would get if written directly: the existing target's
    mode, or 0666 less the umask for a new file.
    """
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    while True:
        temp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        if mode is not None:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    return temp, fd


def _replace(temp: Path, target: Path) -> None:
    """Move the finished file over the target and fsync the folder, so the rename is durable."""
    os.replace(temp, target)
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _why_unwritable(path: Path, exc: OSError) -> str:
    """Why a feed's file could not be created, in words: a file standing where a folder must
    be says so (the OS says "File exists" or "Not a directory")."""
    for folder in path.absolute().parents:
        if folder.exists():
            if not folder.is_dir():
                return f"{folder} is a file, not a folder"
            break
    return exc.strerror or str(exc)
