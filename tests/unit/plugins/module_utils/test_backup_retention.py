# -*- coding: utf-8 -*-
"""GFS retention planner: property-style simulation over three years of daily runs (pure, no S3)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import random
import time

import pytest

from ansible_collections.mcp.platform.plugins.module_utils.backup_retention import DAY, DEFAULT_POLICY, RetentionError, plan, validate_policy


def schedule_class(ts):
    tm = time.gmtime(ts)
    if tm.tm_mday == 1:
        return 'monthly'
    if tm.tm_wday == 6:
        return 'weekly'
    return 'daily'


def check_invariants(sets, result, policy, now):
    by_id = dict((s['id'], s) for s in sets)
    kept = set(k['id'] for k in result['keep'])
    deleted = set(d['id'] for d in result['delete'])
    assert kept | deleted == set(by_id) and not kept & deleted
    fulls = [s for s in sets if s['type'] == 'full']
    verified = [s for s in fulls if s['verified'] is True]
    if verified:
        assert max(verified, key=lambda s: s['time'])['id'] in kept
    if fulls:
        assert max(fulls, key=lambda s: s['time'])['id'] in kept
    for s in sets:
        window = policy.get(s['schedule_class'])
        if window is None or now - s['time'] <= window * DAY:
            assert s['id'] in kept, 'set inside its window was deleted: %r' % s
    for sid in kept:
        cur = by_id[sid]
        while cur['type'] == 'incremental':
            assert cur['parent'] in kept, 'kept incremental %s lost its parent %s' % (cur['id'], cur['parent'])
            cur = by_id[cur['parent']]
    for item in result['delete']:
        assert item['reason'].startswith('older than')


@pytest.mark.parametrize('policy, seed', [
    (DEFAULT_POLICY, 1),
    ({'daily': 3, 'weekly': 14, 'monthly': 90}, 2),
    ({'daily': 10, 'weekly': 60, 'monthly': 730, 'manual': 5}, 3),
])
def test_three_years_of_daily_runs(policy, seed):
    rng = random.Random(seed)
    start = calendar.timegm((2023, 1, 1, 2, 0, 0))
    sets = []
    for day in range(3 * 365 + 1):
        now = start + day * DAY
        cls = schedule_class(now)
        parent = sets[-1]['id'] if sets else None
        kind = 'full' if cls != 'daily' or parent is None else 'incremental'
        entry = {'id': 'set-%04d' % day, 'time': now, 'schedule_class': cls, 'type': kind,
                 'parent': parent if kind == 'incremental' else None,
                 'verified': rng.choice([True, True, True, False, None])}
        sets.append(entry)
        if rng.random() < 0.05:  # an extra manual set now and then
            sets.append({'id': 'set-%04d-m' % day, 'time': now + 3600, 'schedule_class': 'manual', 'type': 'full',
                         'parent': None, 'verified': True})
        result = plan(sets, policy, now + 7200)
        check_invariants(sets, result, policy, now + 7200)
        gone = set(d['id'] for d in result['delete'])
        sets = [s for s in sets if s['id'] not in gone]

    end = start + 3 * 365 * DAY + 7200
    monthly = [s for s in sets if s['schedule_class'] == 'monthly']
    expected_months = int(policy['monthly'] / 30.4)
    assert expected_months - 1 <= len(monthly) <= expected_months + 2
    weekly = [s for s in sets if s['schedule_class'] == 'weekly' and end - s['time'] <= policy['weekly'] * DAY]
    assert len(weekly) >= policy['weekly'] // 7 - 1
    # nothing older than the longest window survives except what the invariants require
    longest = max(v for v in policy.values())
    old = [s for s in sets if end - s['time'] > longest * DAY and s['schedule_class'] in policy]
    assert len(old) <= 2
    # a class without a rule never expires (rules are ORed); with a rule, manual sets expire too
    manual_old = [s for s in sets if s['schedule_class'] == 'manual' and end - s['time'] > 30 * DAY]
    assert bool(manual_old) == ('manual' not in policy)


def test_dry_run_is_deterministic_and_explains():
    now = 100 * DAY
    sets = [{'id': 'a', 'time': 1 * DAY, 'schedule_class': 'daily', 'type': 'full', 'parent': None, 'verified': True},
            {'id': 'b', 'time': 2 * DAY, 'schedule_class': 'daily', 'type': 'incremental', 'parent': 'a', 'verified': None},
            {'id': 'c', 'time': 95 * DAY, 'schedule_class': 'daily', 'type': 'incremental', 'parent': 'b', 'verified': None},
            {'id': 'd', 'time': 3 * DAY, 'schedule_class': 'daily', 'type': 'full', 'parent': None, 'verified': False},
            {'id': 'e', 'time': 4 * DAY, 'schedule_class': 'weekly', 'type': 'full', 'parent': None, 'verified': None}]
    first = plan(sets, DEFAULT_POLICY, now)
    assert first == plan(list(reversed(sets)), DEFAULT_POLICY, now)
    keep = dict((k['id'], k['reasons']) for k in first['keep'])
    assert set(keep) == {'a', 'b', 'c', 'e'}
    assert 'newest verified full set' in keep['a'] and 'needed by kept incremental c' in keep['b']
    assert 'newest full set' in keep['e']
    assert first['delete'] == [{'id': 'd', 'reason': 'older than daily window (age 97.0d > 7d)'}]


@pytest.mark.parametrize('policy, words', [
    ({}, 'empty'), (None, 'empty'), ({'hourly': 3}, 'unknown schedule class'), ({'daily': 0, 'weekly': 0}, 'keeps nothing'),
    ({'daily': -1}, 'retention.daily must be >= 0'), ({'daily': 'x'}, 'retention.daily must be a number'),
    # nan compares false with every age: it once kept nothing but the newest full set
    ({'daily': float('nan')}, 'retention.daily must be a finite number'), ({'manual': 'inf'}, 'finite number'),
    ({'monthly': 1e9}, 'retention.monthly must be <= 36600'), ({'weekly': True}, 'finite number')])
def test_bad_policies_refused(policy, words):
    with pytest.raises(RetentionError) as err:
        validate_policy(policy)
    assert words in str(err.value)
