import pytest

from ansible_collections.mcp.platform.plugins.module_utils.container_logs import classify, scan_lines


@pytest.mark.parametrize("line,level", [
    ("2026-11-24 02:00:01 ERROR mcp handshake failed", "error"),
    ("WARNING:root:health answered 503", "warn"),
    ('{"level": "error", "msg": "db down"}', "error"),
    ("time=... level=warn msg=slow", "warn"),
    ("Traceback (most recent call last):", "error"),
    ("INFO 127.0.0.1 GET /health 200", None),
    ("an errorless line about warnings-free code", None),
    ("2026-11-24T21:23:01.097 INFO uvicorn.error: Uvicorn running on http://0.0.0.0:8080", None),
    ("2026-11-24T21:23:01.097 ERROR uvicorn.error: Exception in ASGI application", "error"),
    ("level=info msg=\"error budget ok\"", None),
])
def test_classify(line, level):
    assert classify(line) == level


def test_scan_counts_and_keeps_order():
    lines = [("a", "INFO ok"), ("a", "ERROR one"), ("b", "WARNING two"), ("b", "ERROR three")]
    counts, kept = scan_lines(lines)
    assert counts == {"error": 2, "warn": 1}
    assert [k["line"] for k in kept] == ["ERROR one", "WARNING two", "ERROR three"]
    counts, kept = scan_lines(lines, levels=("error",))
    assert counts == {"error": 2} and len(kept) == 2
