"""Output folders that a tool may write into again, but never over files it did not write.

A tool that writes predictions under fixed names (``labels/<name>.png``) replaces whatever
lies there: pointed at a dataset folder (``--out data/gta`` with the images in
``data/gta/images``) it would overwrite the source labels with predictions. The tool instead
keeps a record of the files it wrote in the output folder (``.written_by_<tool>.jsonl``, one
line per file: its path, size and modification time), and before it builds anything it
refuses to run when a file it would write exists and is not in that record as it was left.
A rerun into its own output replaces its own earlier files; anything else stays.

The record is appended to as each file is written, so a run that is killed leaves a record
of what it wrote; a line cut short by the kill is ignored.
"""
import contextlib
import json
import os
import os.path as osp
from typing import Dict, Iterable, Tuple


class OverwriteError(ValueError):
    """A tool would replace a file that it did not write."""


class OutputRecordError(ValueError):
    """The record of the files a tool wrote cannot be written."""


def _signature(path: str) -> Tuple[int, int]:
    info = os.lstat(path)
    return info.st_size, info.st_mtime_ns


class OutputRecord:
    """The files a tool wrote into one output folder.

    Args:
        folder: The output folder (it need not exist yet).
        tool: The tool, for the record's name and messages (e.g. ``'tools/infer.py'``).
        what: What the folder is, for messages (e.g. ``'--out folder'``).
    """

    def __init__(self, folder: str, tool: str, what: str = '--out folder') -> None:
        self.folder, self.tool, self.what = folder, tool, what
        name = osp.splitext(osp.basename(tool))[0]
        self.path = osp.join(folder, f'.written_by_{name}.jsonl')

    def _read(self) -> Tuple[Dict[str, Tuple[int, int]], int]:
        """The recorded files (relative path: (size, mtime_ns)), and the number of lines."""
        files, lines = {}, 0
        try:
            with open(self.path) as f:
                for line in f:
                    lines += 1
                    try:
                        entry = json.loads(line)
                        files[entry['file']] = (int(entry['size']), int(entry['mtime_ns']))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a kill, or not one of ours
        except OSError:
            pass  # no record (or none that can be read): every existing file is foreign
        return files, lines

    def check(self, paths: Iterable[str], compact: bool = True) -> None:
        """Raise when one of ``paths`` exists and this tool did not leave it there as it is.

        A folder in the place of a file is left to the write to report.

        Args:
            paths: Every file the run may write, below the output folder.
            compact: Rewrite the record without the lines of files that are gone or changed
                (only where no other process appends to it).

        Raises:
            OverwriteError: Naming the first such file and what to do.
        """
        recorded, lines = self._read()
        for path in paths:
            if not osp.lexists(path) or osp.isdir(path):
                continue
            relative = osp.relpath(path, self.folder)
            if recorded.get(relative) != _signature(path):
                raise OverwriteError(
                    f'{self.what} {self.folder} would overwrite {path}, which no earlier run '
                    f'of {self.tool} wrote (or which was changed since): choose a new or '
                    f'empty {self.what}')
        if compact and lines:
            self._compact(recorded, lines)

    def _compact(self, recorded: Dict[str, Tuple[int, int]], lines: int) -> None:
        kept = {}
        for relative, signature in recorded.items():
            path = osp.join(self.folder, relative)
            if osp.isfile(path) and _signature(path) == signature:
                kept[relative] = signature
        if len(kept) == lines:
            return
        partial = f'{self.path}.{os.getpid()}.partial'
        try:
            with open(partial, 'w') as f:
                for relative, (size, mtime_ns) in kept.items():
                    f.write(self._line(relative, size, mtime_ns))
            os.replace(partial, self.path)
        except OSError:  # the longer record stays, as valid as the short one
            with contextlib.suppress(OSError):
                os.remove(partial)

    @staticmethod
    def _line(relative: str, size: int, mtime_ns: int) -> str:
        return json.dumps(dict(file=relative, size=size, mtime_ns=mtime_ns)) + '\n'

    def add(self, path: str) -> None:
        """Record ``path``, a file just written below the output folder.

        Raises:
            OutputRecordError: ``cannot write <record>: <reason>``; the file stays unrecorded,
                so a later run refuses to replace it rather than replace a foreign one.
        """
        try:
            size, mtime_ns = _signature(path)
            with open(self.path, 'a') as f:
                f.write(self._line(osp.relpath(path, self.folder), size, mtime_ns))
        except OSError as error:
            raise OutputRecordError(f'cannot write {self.path}: {error.strerror or error}') \
                from error
