"""The tools' output files: folders checked before the work, results written in full or not
at all, reports as JSON and markdown."""
import contextlib
import os


class OutputPathError(ValueError):
    """An output folder or file of a tool cannot be written."""


def check_output_folder(path: str, what: str) -> None:
    """Raise unless ``path`` is a folder that can be written to, or created.

    Run before a model is built, so that a typo or a read-only place stops a tool at once
    instead of after the whole inference. Nothing is created here.

    Args:
        path: The output folder (it need not exist yet).
        what: What the folder is, for the message (e.g. ``'--out folder'``).

    Raises:
        OutputPathError: Naming the folder and what is wrong.
    """
    target = os.path.abspath(path)
    existing = target
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        if existing == target:
            raise OutputPathError(f'{what} {path} exists and is not a folder')
        raise OutputPathError(f'{what} {path} cannot be created: {existing} is not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == target:
            raise OutputPathError(f'{what} {path} is not writable')
        raise OutputPathError(f'{what} {path} cannot be created: {existing} is not writable')


def write_result_file(path: str, write) -> None:
    """Write a result file in full or not at all; an ``OSError`` becomes one line naming it.

    ``write`` writes a hidden file next to ``path`` (same extension, so that writers which
    pick the format by the name still work), which then replaces ``path``: a full disk or a
    killed process leaves no truncated result, and an earlier result stays intact.

    Args:
        path: The result file; its folder is created when missing.
        write: Called with the path to write to, e.g. ``picture.save``.

    Raises:
        OutputPathError: ``cannot write <path>: <reason>``.
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    partial = os.path.join(folder, f'.{stem}.{os.getpid()}.partial{ext}')
    try:
        os.makedirs(folder, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise OutputPathError(f'cannot write {path}: {error.strerror or error}') from error


def write_result_text(path: str, text: str) -> None:
    """Write ``text`` to the result file ``path`` (see ``write_result_file``)."""

    def write(target: str) -> None:
        with open(target, 'w') as f:
            f.write(text)

    write_result_file(path, write)


def write_report(prefix: str, report: dict, markdown: str, shown: str = None) -> None:
    """Write a tool's report as ``PREFIX.json`` and ``PREFIX.md`` (each in full or not at all,
    ``write_result_text``), print the markdown and the two paths.

    Args:
        prefix: Output path without extension; its folder is created when missing.
        report: The JSON-serialisable report.
        markdown: Its markdown rendering.
        shown: How to name the prefix in the printed line (default: ``prefix``).
    """
    import json
    write_result_text(prefix + '.json', json.dumps(report, indent=2))
    write_result_text(prefix + '.md', markdown)
    print(markdown)
    shown = prefix if shown is None else shown
    print(f'written: {shown}.json, {shown}.md')
