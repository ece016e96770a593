"""Make `ansible_collections.mcp.platform` importable from a flat checkout, and tests/support as `support`.

The repository root is the collection root; Python needs it below
`ansible_collections/mcp/platform`, so we point a symlink farm in .build/ at it.
Shared test code lives in tests/support (`from support.ports import free_port`); test modules never import each other.
Tiers: tests/unit (pure), tests/component (one real local service per fixture, tests/component/conftest.py),
tests/integration (the lab).
"""
import os
import shutil
import sys
import tempfile

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
FARM = os.path.join(ROOT, ".build", "collections")
LINK = os.path.join(FARM, "ansible_collections", "mcp", "platform")

if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    try:
        os.symlink(ROOT, LINK)
    except FileExistsError:
        pass
if FARM not in sys.path:
    sys.path.insert(0, FARM)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", FARM)


@pytest.fixture
def lockdir():
    """An empty folder of its own for a fleet lock file (``fleet.lock`` in it), removed afterwards."""
    d = tempfile.mkdtemp(prefix="mcplock")
    yield d
    shutil.rmtree(d)
