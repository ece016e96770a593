# -*- coding: utf-8 -*-
"""Shared test code (not tests): free ports, waiting, throwaway PostgreSQL clusters, the ``ansible`` CLI, local servers.

tests/conftest.py puts the tests/ folder on ``sys.path``; import as ``from support.ports import free_port``. Test modules
import only from here, never from one another.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
