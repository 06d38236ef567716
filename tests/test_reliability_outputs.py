"""Result files are written in full or not at all, and output folders are checked up front."""
import errno
import os

import pytest

from tools._common import (OutputPathError, check_output_folder, write_result_file,
                           write_result_text)


def test_a_full_disk_keeps_the_earlier_result_and_names_the_file(tmp_path):
    path = tmp_path / 'metrics.json'
    path.write_text('{"mIoU": 41.2}')

    def fill_the_disk(target):
        with open(target, 'w') as f:
            f.write('{"mIoU": ')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)

    with pytest.raises(OutputPathError) as info:
        write_result_file(str(path), fill_the_disk)
    assert str(info.value) == f'cannot write {path}: No space left on device'
    assert path.read_text() == '{"mIoU": 41.2}'  # the earlier result, intact
    assert os.listdir(tmp_path) == ['metrics.json']  # no partial file left behind


def test_result_text_is_written_and_its_folder_created(tmp_path):
    path = tmp_path / 'tables' / 'per_class.md'
    write_result_text(str(path), '| Method | mIoU |\n')
    assert path.read_text() == '| Method | mIoU |\n'
    assert os.listdir(tmp_path / 'tables') == ['per_class.md']
    write_result_text(str(path), 'replaced\n')
    assert path.read_text() == 'replaced\n'


def test_a_folder_in_the_way_of_a_result_file_is_one_line(tmp_path):
    path = tmp_path / 'metrics.json'
    path.mkdir()
    with pytest.raises(OutputPathError) as info:
        write_result_text(str(path), '{}')
    assert str(info.value) == f'cannot write {path}: Is a directory'
    assert os.listdir(tmp_path) == ['metrics.json']


def test_output_folder_checks_create_nothing(tmp_path):
    check_output_folder(str(tmp_path / 'new' / 'deeper'), '--out folder')
    check_output_folder(str(tmp_path), '--out folder')
    assert os.listdir(tmp_path) == []
    blocker = tmp_path / 'results'
    blocker.write_text('a file')
    with pytest.raises(OutputPathError) as info:
        check_output_folder(str(blocker / 'a' / 'b'), 'work dir')
    assert str(info.value) == (f'work dir {blocker}/a/b cannot be created: {blocker} is not '
                               'a folder')
    with pytest.raises(OutputPathError) as info:
        check_output_folder(str(blocker), 'work dir')
    assert str(info.value) == f'work dir {blocker} exists and is not a folder'


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders: chmod '
                    'cannot make a folder unwritable (the file-parent variant still runs)')
def test_read_only_folders_are_named(tmp_path):
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        with pytest.raises(OutputPathError) as info:
            check_output_folder(str(read_only), '--out folder')
        assert str(info.value) == f'--out folder {read_only} is not writable'
        with pytest.raises(OutputPathError) as info:
            check_output_folder(str(read_only / 'pred'), '--out folder')
        assert str(info.value) == (f'--out folder {read_only}/pred cannot be created: '
                                   f'{read_only} is not writable')
        with pytest.raises(OutputPathError) as info:
            write_result_text(str(read_only / 'metrics.json'), '{}')
        assert str(info.value) == (f"cannot write {read_only / 'metrics.json'}: Permission "
                                   'denied')
    finally:
        read_only.chmod(0o755)
