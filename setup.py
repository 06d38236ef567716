from setuptools import find_packages, setup


def version():
    scope = {}
    with open('mmseg_iccld/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmseg_iccld',
    version=version(),
    description='Unsupervised domain adaptation (ICCLD, DACS/DAFormer, HRDA, MIC) for '
    'MMSegmentation 1.x',
    packages=find_packages(include=['mmseg_iccld', 'mmseg_iccld.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0', 'mmcv==2.1.0', 'mmengine==0.10.7', 'mmsegmentation==1.2.2', 'diffusers',
        'kornia', 'cityscapesscripts', 'ftfy', 'regex', 'tqdm', 'matplotlib'
    ],
)
