# -*- coding: utf-8 -*-
"""Modules run through the real ``ansible`` CLI (``ansible localhost -m ...``), the collection found through the
symlink farm tests/conftest.py creates (.build/collections). The fixtures handing these out (skipping without the CLI)
are in tests/component/conftest.py.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

from support import ROOT

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
ANSIBLE = os.path.join(VENV_BIN, "ansible")


def ansible_available():
    """None when the CLI is there, else why not."""
    return None if os.path.exists(ANSIBLE) else "no %s" % ANSIBLE


def run_module(module, args, verbosity="-vvv", extra_env=None):
    """``ansible localhost -m <module> -a <args>``: (rc, output). ``extra_env`` is the module's environment too."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"))
    env.update(extra_env or {})
    proc = subprocess.run([ANSIBLE, "localhost", verbosity, "-m", module, "-a", args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False, timeout=120)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def run_module_json(module, args, check=False, verbosity=0):
    """``mcp.platform.<module>`` with the json stdout callback: (rc, output, the host's result or None).

    With ``verbosity`` the output is text (-v...) and the result None."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0', ANSIBLE_STDOUT_CALLBACK='json',
               ANSIBLE_LOAD_CALLBACK_PLUGINS='1')
    argv = [ANSIBLE, 'localhost', '-m', 'mcp.platform.%s' % module, '-a', json.dumps(args),
            '-e', 'ansible_python_interpreter=%s' % sys.executable]
    if check:
        argv.append('--check')
    if verbosity:
        argv.append('-' + 'v' * verbosity)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=300, check=False)
    out = proc.stdout.decode('utf-8', 'replace')
    result = None
    if not verbosity:
        try:
            doc = json.loads(out[out.index('{'):])
            result = doc['plays'][0]['tasks'][0]['hosts']['localhost']
        except (ValueError, KeyError, IndexError):
            result = None
    return proc.returncode, out, result


def run_module_result(module, args, *extra):
    """``mcp.platform.<module>`` with the default callback (JSON result format), outside the repository so its
    ansible.cfg (lab inventory, YAML output) does not apply: (CompletedProcess, the result or None)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=os.path.join(ROOT, ".build", "ansible-tmp"), ANSIBLE_DEPRECATION_WARNINGS="False",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    env.pop("ANSIBLE_CONFIG", None)
    cmd = [ANSIBLE, "localhost", "-i", "localhost,", "-c", "local", "-m", "mcp.platform.%s" % module, "-a", json.dumps(args),
           "-e", "ansible_python_interpreter=%s" % sys.executable] + list(extra)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=os.path.join(ROOT, "tests"))
    out = proc.stdout
    result = None
    if "=> {" in out:
        body = out[out.index("=> {") + 3:]
        result = json.JSONDecoder().raw_decode(body)[0]
        result["failed"] = "localhost | FAILED!" in out  # the default callback drops the key
    return proc, result
