"""Listing the files of a dataset folder, the one way the converters and the datasets share.

The converters and the datasets must see the same files: a converted label and a class
statistic exist only for what the converter listed, and a dataset that lists more either
fails on an unconverted label or trains on images rare class sampling never draws.
:func:`list_files` is therefore the listing of both, and it differs from a plain recursive
scan in three ways:

- Symlinked folders are followed (data folders are often links to another disk), but a link
  that leads back to a folder it lies in (``ln -s . images/loop``) is a loop: followed, it
  would repeat the same files until the system gives up with ELOOP after ~40 levels. It is
  skipped with a note naming it, as it adds no file that is not listed already.
- Hidden files (names starting with ``.``) are not listed, as mmengine's own listing
  (``mmengine.fileio.list_dir_or_file``, which mmseg's datasets use) does not list them
  either. The ones that carry the suffix looked for are counted in a note. They are, in
  practice, macOS AppleDouble files: copying to a file system without extended attributes
  (exFAT, a network share, some archivers) writes ``._<name>`` beside every file, a few
  kilobytes of metadata that carry the image's suffix but hold no image. Reading one as an
  image fails, so a converter would stop on it (and on a val split, which it never skips,
  with no way forward but deleting the files by hand); leaving it out loses nothing.
- The order is sorted, so that it does not depend on the order of the files on disk.
"""
import os
import os.path as osp
from typing import Iterator, List, Set, Tuple

from .validation import note_once


def walk(folder: str) -> Iterator[Tuple[os.DirEntry, str]]:
    """Every entry below ``folder`` with its path relative to ``folder``, in the order of the
    sorted names, folders before their contents; symlinked folders are followed, symlink loops
    skipped with a note (see the module docstring).

    Args:
        folder: The folder to walk.

    Yields:
        ``(entry, relative path)``; ``entry.is_dir()`` tells the folders.
    """
    # (folder path, its path relative to `folder`, real paths of it and the folders above it)
    stack: List[Tuple[str, str, Set[str]]] = [(folder, '', {osp.realpath(folder)})]
    while stack:
        path, rel, above = stack.pop()
        with os.scandir(path) as entries:
            entries = sorted(entries, key=lambda entry: entry.name)
        subfolders = []
        for entry in entries:
            if entry.is_dir():  # follows symlinks
                real = osp.realpath(entry.path)
                if real in above:
                    note_once(f'symlink loop {entry.path}',
                              f'{entry.path}: symlink loop skipped (it leads back to {real}, '
                              f'which holds it)')
                    continue
                subfolders.append((entry.path, osp.join(rel, entry.name), above | {real}))
            yield entry, osp.join(rel, entry.name)
        stack.extend(reversed(subfolders))


def list_files(folder: str, suffix: str) -> List[str]:
    """The files below ``folder`` whose name ends with ``suffix``, relative to ``folder``.

    Symlink loops are skipped and hidden files ignored, each with a note (see the module
    docstring). Entries that are not folders are listed even when they cannot be read (a
    broken symlink), so that the reader names them instead of them vanishing.

    Args:
        folder: The folder to walk.
        suffix: The file name suffix, e.g. ``'.png'`` or ``'_leftImg8bit.png'``.

    Returns:
        Relative paths, sorted.
    """
    found: List[str] = []
    hidden: List[str] = []
    for entry, rel in walk(folder):
        if not entry.is_dir() and entry.name.endswith(suffix):
            (hidden if entry.name.startswith('.') else found).append(rel)
    if hidden:
        note_once(f'hidden files {folder} {suffix}',
                  f'{folder}: ignored {len(hidden)} hidden *{suffix} file(s), e.g. '
                  f'{osp.join(folder, hidden[0])} (names starting with "." are not data: '
                  f'"._*" files are metadata macOS writes when copying)')
    return sorted(found)
