import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='session')
def root(): return ROOT

def bin_path(name):
    "A console script installed beside this Python (the venv's bin), else on PATH."
    p = Path(sys.executable).parent/name
    return str(p) if p.exists() else name
