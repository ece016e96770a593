"""Make `ansible_collections.mcp.platform` importable from a flat checkout.

The repository root is the collection root; Python needs it below
`ansible_collections/mcp/platform`, so we point a symlink farm in .build/ at it.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", FARM)
