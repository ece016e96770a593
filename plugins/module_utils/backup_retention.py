# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GFS retention planner (pure: no I/O, no clock).

Every complete set carries a schedule class (daily / weekly / monthly / manual).
A policy maps classes to a number of days. A set is kept when any rule keeps it
(rules are ORed, like restic's ``forget``):

* it is younger than the window of its class (a class without a rule is kept);
* it is the newest full set whose last verification succeeded;
* it is the newest full set at all (so a site whose verification never ran still
  keeps one restorable set when backups stop);
* a kept incremental needs it (its parent chain, transitively, down to the full).

Everything else is deleted, each with the reason. An empty policy (or one whose
windows are all zero) is refused: it almost certainly is a mistake.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mcp.platform.plugins.module_utils import validation
from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError

DAY = 86400
MAX_DAYS = 100 * 366  # a century: beyond it a window is a typo, and ``inf`` would overflow the date arithmetic
DEFAULT_POLICY = {'daily': 7, 'weekly': 30, 'monthly': 365}
CLASSES = ('daily', 'weekly', 'monthly', 'manual')


class RetentionError(PlatformError):
    pass


def validate_policy(policy):
    """Return ``{class: days}``; raise RetentionError naming the problem."""
    if not policy:
        raise RetentionError('retention policy is empty; refusing to prune (give e.g. {daily: 7, weekly: 30, monthly: 365})')
    clean = {}
    for cls, days in policy.items():
        if cls not in CLASSES:
            raise RetentionError('retention: unknown schedule class %r (expected one of %s)' % (cls, ', '.join(CLASSES)))
        if days is None:
            continue
        try:
            clean[cls] = validation.number('retention.%s' % cls, days, minimum=0, maximum=MAX_DAYS)
        except validation.ValidationError as exc:
            raise RetentionError('%s (days)' % exc)
    if not any(v > 0 for v in clean.values()):
        raise RetentionError('retention policy keeps nothing (all windows empty or zero); refusing to prune')
    return clean


def _fmt_days(seconds):
    return '%.1fd' % (seconds / float(DAY))


def plan(sets, policy, now):
    """Plan a prune.

    ``sets``: iterable of dicts with ``id``, ``time`` (epoch start), ``schedule_class``,
    ``type`` (full/incremental), ``parent`` (set id or None) and ``verified``
    (True, False or None for never verified).
    Returns ``{'keep': [{'id', 'reasons'}], 'delete': [{'id', 'reason'}]}`` sorted by time.
    """
    policy = validate_policy(policy)
    sets = sorted(sets, key=lambda s: (s['time'], s['id']))
    by_id = dict((s['id'], s) for s in sets)
    reasons = dict((s['id'], []) for s in sets)
    why_not = {}

    for s in sets:
        cls = s.get('schedule_class') or 'manual'
        age = now - s['time']
        if cls not in policy:
            reasons[s['id']].append('no retention rule for class %s' % cls)
        elif age <= policy[cls] * DAY:
            reasons[s['id']].append('within %s window (age %s <= %gd)' % (cls, _fmt_days(age), policy[cls]))
        else:
            why_not[s['id']] = 'older than %s window (age %s > %gd)' % (cls, _fmt_days(age), policy[cls])

    fulls = [s for s in sets if s.get('type') == 'full']
    verified_fulls = [s for s in fulls if s.get('verified') is True]
    if verified_fulls:
        reasons[verified_fulls[-1]['id']].append('newest verified full set')
    if fulls:
        reasons[fulls[-1]['id']].append('newest full set')

    # parents of kept incrementals, transitively
    changed = True
    while changed:
        changed = False
        for s in sets:
            if not reasons[s['id']] or s.get('type') != 'incremental':
                continue
            parent = s.get('parent')
            if parent in by_id:
                why = 'needed by kept incremental %s' % s['id']
                if why not in reasons[parent]:
                    if not reasons[parent]:
                        changed = True
                    reasons[parent].append(why)

    keep, delete = [], []
    for s in sets:
        if reasons[s['id']]:
            keep.append({'id': s['id'], 'reasons': reasons[s['id']]})
        else:
            delete.append({'id': s['id'], 'reason': why_not.get(s['id'], 'not kept by any rule')})
    return {'keep': keep, 'delete': delete}
