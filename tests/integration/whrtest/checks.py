"""Assertions shared by the tests: log fields, error bodies, the rows of
an inbox."""

import json
import re
import sqlite3

from .bodies import mac_hex
from .secrecy import SENT_MACS


def log_fields(line):
    """key=value fields of a text log line (values may be quoted)."""
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = json.loads(v)
        out[m.group(1)] = v
    return out


def assert_error_body(test, r, secrets=(), body=b''):
    """An error answer: short plain text that holds no secret and no MAC
    (neither the one sent nor the one expected for @body)."""
    test.assertLess(len(r.body), 200, r)
    if r.body:
        test.assertTrue((r.header('Content-Type') or '')
                        .startswith('text/plain'), r)
    text = r.body.decode('utf-8', 'replace')
    low = text.lower()
    for s in secrets:
        test.assertNotIn(s, text)
        test.assertNotIn(mac_hex(s, body).lower(), low)
    for m in SENT_MACS:
        test.assertNotIn(m, low)
    test.assertIsNone(re.search(r'[0-9a-f]{40,}', low),
                      'a long hex string in an error body: %r' % text)


def inbox_query(data, sql, *args, timeout=10):
    """The rows @sql gives in the inbox of data folder @data, opened
    read-only (whr may be writing it) and closed again."""
    db = sqlite3.connect('file:%s/inbox.sqlite?mode=ro' % data, uri=True,
                         timeout=timeout)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()
