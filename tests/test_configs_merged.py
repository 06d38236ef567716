"""Every config under configs/ merges into the config recorded in tests/data/merged_configs/:
a change of a base file that alters what any experiment trains shows up here, key by key.

After an intended change, record the new merged configs with
``python tests/test_configs_merged.py --update`` and review the diff of the JSON files.
"""
import glob
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECORDED = osp.join(ROOT, 'tests', 'data', 'merged_configs')
CONFIGS = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                                          recursive=True)
                 if '_base_' not in p)


def merged(config: str) -> dict:
    """The merged config as plain JSON types (tuples become lists)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    return json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=str))


def recorded_path(config: str) -> str:
    return osp.join(RECORDED, config.replace('/', '__').replace('.py', '.json'))


def differences(expected, actual, path='') -> list:
    """Paths where two JSON values differ, with both values."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            where = f'{path}.{key}' if path else key
            if key not in actual:
                out.append(f'{where}: missing (recorded {expected[key]!r})')
            elif key not in expected:
                out.append(f'{where}: new ({actual[key]!r})')
            else:
                out += differences(expected[key], actual[key], where)
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual))
                for d in differences(e, a, f'{path}[{i}]')]
    return [] if expected == actual else [f'{path}: {actual!r} (recorded {expected!r})']


def test_every_config_has_a_recorded_merge():
    recorded = {osp.basename(p) for p in glob.glob(osp.join(RECORDED, '*.json'))}
    assert recorded == {osp.basename(recorded_path(c)) for c in CONFIGS}


@pytest.mark.parametrize('config', CONFIGS)
def test_config_merges_as_recorded(config):
    with open(recorded_path(config)) as f:
        expected = json.load(f)
    found = differences(expected, merged(config))
    assert not found, f'{config} merges differently:\n' + '\n'.join(found[:20])


def update() -> None:
    for config in CONFIGS:
        with open(recorded_path(config), 'w') as f:
            json.dump(merged(config), f, indent=1, sort_keys=True)
            f.write('\n')
    print(f'recorded {len(CONFIGS)} merged configs in {osp.relpath(RECORDED, ROOT)}')


if __name__ == '__main__':
    if sys.argv[1:] != ['--update']:
        sys.exit('usage: python tests/test_configs_merged.py --update')
    update()
