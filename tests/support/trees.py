"""One folder tree as a comparable value: what a restore must give back exactly."""
from __future__ import annotations

import hashlib
import os


def tree_state(root, xattrs=True, links=True):
    """relative path -> (mode, uid, gid, SHA-256 of a file or a link's target, [xattrs], [hard-link count])."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if os.path.islink(full):
                body = os.readlink(full)
            elif os.path.isfile(full):
                with open(full, "rb") as fh:
                    body = hashlib.sha256(fh.read()).hexdigest()
            else:
                body = None
            entry = (st.st_mode, st.st_uid, st.st_gid, body)
            if xattrs:
                try:
                    entry += (sorted((k, os.getxattr(full, k, follow_symlinks=False))
                                     for k in os.listxattr(full, follow_symlinks=False)),)
                except OSError:
                    entry += ([],)
            if links:
                entry += (st.st_nlink if os.path.isfile(full) and not os.path.islink(full) else None,)
            state[os.path.relpath(full, root)] = entry
    return state
