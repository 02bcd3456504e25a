import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
# the environment of the CLI subprocesses the tests start: no hub, one thread each (two processes share a 2-core machine)
OFFLINE_ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false')

@pytest.fixture(scope='session')
def root(): return ROOT

def bin_path(name):
    "A console script installed beside this Python (the venv's bin), else on PATH."
    p = Path(sys.executable).parent/name
    return str(p) if p.exists() else name
