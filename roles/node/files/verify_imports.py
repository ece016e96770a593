# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import every package of the node role's list with this Python (the venv's) and say what is missing.

Run as ``<venv>/bin/python -c <this file> '<JSON list of pip requirement specifiers>'``. Each package
is found by its distribution name and every top-level module it installs is imported, so the pip name
is all the list needs (psycopg2-binary -> psycopg2). Run as the user the modules run as, so that an
unreadable venv counts as broken. Prints one line and exits 0 when everything imports, or prints the
missing and broken packages by name and exits 1.
"""

import importlib
import json
import re
import sys
from importlib import metadata


def top_level_modules(dist):
    """Public top-level modules a distribution installs (top_level.txt, else the first parts of its files)."""
    names = (dist.read_text("top_level.txt") or "").split()
    if not names:
        for path in dist.files or ():
            first = path.parts[0]
            names.append(first if len(path.parts) > 1 else first.split(".")[0])
    return sorted(set(name for name in names if name.isidentifier() and not name.startswith("_")))


def check(requirements):
    found, problems = [], []
    for requirement in requirements:
        name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append("%s (not installed)" % name)
            continue
        packages = set(path.parts[0] for path in dist.files or () if path.parts[1:] == ("__init__.py",))
        for module in top_level_modules(dist) or [name.replace("-", "_")]:
            try:
                imported = importlib.import_module(module)
            except Exception as exc:  # pylint: disable=broad-except  # ImportError or a broken extension module
                problems.append("%s (import %s: %s)" % (name, module, " ".join(str(exc).split())))
                break
            # A package folder this user cannot read imports as an empty namespace package instead of failing.
            if module in packages and getattr(imported, "__file__", None) is None:
                problems.append("%s (import %s: %s/__init__.py is not readable)" % (name, module, module))
                break
        else:
            found.append("%s %s" % (name, dist.version))
    return found, problems


def main():
    found, problems = check(json.loads(sys.argv[1]))
    if problems:
        print("%s cannot import: %s" % (sys.prefix, "; ".join(problems)))
        return 1
    print("%s imports %s" % (sys.prefix, ", ".join(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
