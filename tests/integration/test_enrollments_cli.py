"""`whr enrollments` (list, summary, history) against the real whr binary:

- FilledByHand: a database we fill ourselves, with the tables made by the
  exact SQL of handlers/enrollments/schema.c, for exact expectations
  (ordering, cycles, the summary's numbers, quoting, UTF-8, folding);
- ThroughTheServer: the data the real tracker of `whr serve` writes from
  signed deliveries made from samples/*.json, read while the server runs;
- Errors: every usage error (exit 2) and runtime error (exit 1).
"""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402

SECRET = w.secret('enrollments-cli', 32)
ENV = {'MS_WebHookReceiverSecret_Custom': SECRET}
DAY = 86400 * 1000000

LIST_KEYS = ['course_id', 'course_title', 'learner_id', 'email', 'name',
             'state', 'cycle', 'approval_requested_at', 'enrolled_at',
             'started_at', 'completed_at', 'unenrolled_at', 'updated_at']
LIST_TITLES = ['COURSE ID', 'COURSE', 'LEARNER ID', 'E-MAIL', 'NAME',
               'STATE', 'CYCLE', 'APPROVAL REQUESTED', 'ENROLLED',
               'STARTED', 'COMPLETED', 'UNENROLLED', 'UPDATED']
SUMMARY_KEYS = ['course_id', 'course_title', 'enrolled', 'started',
                'completed', 'unenrolled', 'awaiting_approval',
                'completion_rate', 'median_days_to_complete']
SUMMARY_TITLES = ['COURSE ID', 'COURSE', 'ENROLLED', 'STARTED', 'COMPLETED',
                  'UNENROLLED', 'AWAITING APPROVAL', 'COMPLETION %',
                  'MEDIAN DAYS']
HISTORY_KEYS = ['event_at', 'action', 'course_id', 'course_title',
                'learner_id', 'email', 'name', 'cycle', 'effect',
                'delivery_id', 'receiver']
HISTORY_TITLES = ['TIME', 'ACTION', 'COURSE ID', 'COURSE', 'LEARNER ID',
                  'E-MAIL', 'NAME', 'CYCLE', 'EFFECT', 'DELIVERY',
                  'RECEIVER']
NUMERIC = {'cycle', 'enrolled', 'started', 'completed', 'unenrolled',
           'awaiting_approval', 'completion_rate', 'median_days_to_complete'}
DECIMAL = {'completion_rate', 'median_days_to_complete'}
ISO_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')


def us(text):
    """Microseconds since the epoch of a UTC time 2024-05-01T10:00:00Z."""
    import calendar
    t = time.strptime(text, '%Y-%m-%dT%H:%M:%SZ')
    return calendar.timegm(t) * 1000000


def iso(micro):
    return None if micro is None else time.strftime(
        '%Y-%m-%dT%H:%M:%SZ', time.gmtime(micro // 1000000))


def enrollments(args, env=None, without_root_file_access=False):
    """Run whr enrollments ARGS: (status, stdout as strict UTF-8, stderr
    lines of the program itself)."""
    argv = w.command('whr-raw', ['enrollments', *args])
    if without_root_file_access and os.geteuid() == 0:
        argv = ['setpriv', '--bounding-set',
                '-dac_override,-dac_read_search'] + argv
    with tempfile.TemporaryDirectory(prefix='whr-enr-') as tmp:
        p = subprocess.run(argv, env=w.minimal_env(env), cwd=tmp,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=w.slow(10))
    out = p.stdout.decode('utf-8')     # strict: the output is UTF-8
    err = '\n'.join(w.program_lines(p.stderr.decode('utf-8', 'replace')))
    return p.returncode, out, err


def run_ok(test, args, env=None):
    rc, out, err = enrollments(args, env)
    test.assertEqual(rc, 0, 'whr enrollments %s: %s' % (args, err))
    test.assertEqual(err, '', args)
    return out


def as_json(test, args, keys):
    rows = json.loads(run_ok(test, [*args, '--format', 'json']))
    test.assertIsInstance(rows, list)
    for r in rows:
        test.assertEqual(list(r), keys)
    return rows


def as_csv(test, args, keys):
    out = run_ok(test, [*args, '--format', 'csv'])
    # RFC 4180: every record ends with CRLF (inside quotes, a line end
    # is the cell's own).
    test.assertTrue(out.endswith('\r\n'), repr(out[-20:]))
    rows = list(csv.reader(io.StringIO(out, newline='')))
    test.assertEqual(rows[0], keys)
    return [dict(zip(keys, r)) for r in rows[1:]]


def cell_text(key, value):
    if value is None:
        return '-'
    if key in DECIMAL:
        return '%.1f' % value
    text = str(value)
    return ''.join(' ' if ord(c) < 0x20 or c == '\x7f' else c for c in text)


def expected_table(rows, keys, titles):
    """The table whr should print for @rows (from its JSON): columns two
    spaces apart, as wide as their widest cell, numbers to the right,
    the last column not padded."""
    cells = [[cell_text(k, r[k]) for k in keys] for r in rows]
    widths = [max([len(t)] + [len(c[i]) for c in cells])
              for i, t in enumerate(titles)]
    lines = []
    for line in [titles] + cells:
        parts = []
        for i, (k, text) in enumerate(zip(keys, line)):
            if k in NUMERIC:
                parts.append(text.rjust(widths[i]))
            elif i + 1 < len(keys):
                parts.append(text.ljust(widths[i]))
            else:
                parts.append(text)
        lines.append('  '.join(parts) + '\n')
    return ''.join(lines)


def check_formats(test, args, keys, titles):
    """The three formats of one report agree: JSON parsed, CSV parsed
    (NULL as an empty field, numbers as JSON has them), the table exactly
    as expected_table(). Returns the JSON rows."""
    rows = as_json(test, args, keys)
    records = as_csv(test, args, keys)
    test.assertEqual(len(records), len(rows))
    for r, c in zip(rows, records):
        for k in keys:
            if r[k] is None:
                want = ''
            elif k in DECIMAL:
                want = '%.1f' % r[k]
            else:
                want = str(r[k])
            test.assertEqual(c[k], want, k)
    table = run_ok(test, args)
    if rows:
        test.assertEqual(table, expected_table(rows, keys, titles))
    for r in rows:
        for k in keys:
            if k.endswith('_at') and r[k] is not None:
                test.assertRegex(r[k], ISO_RE)
    return rows


# ---- the schema, as the tracker makes it -----------------------------------

def schema_sql():
    """The SQL of handlers/enrollments/schema.c (its SQLite tables, the
    sqlite_v1 string)."""
    root = os.environ.get('WHR_SOURCE_ROOT')
    if not root:
        raise RuntimeError('WHR_SOURCE_ROOT is not set (run through meson '
                           'test)')
    with open(os.path.join(root, 'handlers', 'enrollments', 'schema.c'),
              encoding='utf-8') as f:
        text = f.read()
    m = re.search(r'sqlite_v1\[\]\s*=(.*?";)\s*$', text, re.S | re.M)
    if not m:
        raise RuntimeError('no sqlite_v1 in handlers/enrollments/schema.c')
    block = re.sub(r'/\*.*?\*/', '', m.group(1), flags=re.S)
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', block)
    sql = ''.join(parts)
    if 'CREATE TABLE enrollments' not in sql:
        raise RuntimeError('sqlite_v1 not understood: ' + sql[:200])
    return sql


def store_version():
    """STORE_SCHEMA_VERSION from receiver/store/store.h."""
    root = os.environ['WHR_SOURCE_ROOT']
    with open(os.path.join(root, 'receiver', 'store', 'store.h')) as f:
        return int(re.search(r'#define STORE_SCHEMA_VERSION (\d+)',
                             f.read()).group(1))


def store_file():
    root = os.environ['WHR_SOURCE_ROOT']
    with open(os.path.join(root, 'receiver', 'store', 'store.h')) as f:
        return re.search(r'#define STORE_FILE "([^"]+)"', f.read()).group(1)


T0 = us('2024-05-01T10:00:00Z')

# (course_id, title)
COURSES = [
    ('course-a', 'Fire Safety, "Basics"'),
    ('COURSE-B', 'Ærø Sailing'),
    ('course-c', 'Zero\nLearners'),
]
# (learner_id, email, name); learner-4 has no learners row at all
LEARNERS = [
    ('learner-1', 'laerke.ostergaard@contoso.com', 'Lærke Østergaard'),
    ('learner-2', 'ALEX.wilber@contoso.com', 'Alex Wilber'),
    ('learner-3', 'zed@example.org', 'Zoë "Z" Ng, Jr.'),
]
# (course, learner, cycle, state, approval, enrolled, started, completed,
#  unenrolled, updated)
ENROLLMENTS = [
    ('course-a', 'learner-1', 1, 'completed', None, T0, T0 + DAY,
     T0 + 3 * DAY, None, T0 + 3 * DAY),
    ('course-a', 'learner-2', 1, 'unenrolled', None, T0, None, None,
     T0 + DAY, T0 + DAY),
    ('course-a', 'learner-2', 2, 'started', None, T0 + 2 * DAY,
     T0 + 4 * DAY, None, None, T0 + 4 * DAY),
    # The case of an id may differ from that of its courses row: the
    # same course.
    ('Course-A', 'learner-3', 1, 'approval_requested', T0 + 5 * DAY, None,
     None, None, None, T0 + 5 * DAY),
    ('course-a', 'learner-4', 1, 'completed', None, T0, None, T0 + 2 * DAY,
     None, T0 + 6 * DAY),
    ('COURSE-B', 'learner-1', 1, 'enrolled', None, T0 + 10 * DAY, None,
     None, None, T0 + 10 * DAY),
    ('COURSE-B', 'learner-2', 1, 'unenrolled', None, T0, None, None,
     T0 + 11 * DAY, T0 + 11 * DAY),
    ('COURSE-B', 'learner-3', 1, 'completed', None, T0, T0 + DAY // 4,
     T0 + DAY // 2, None, T0 + DAY // 2),
    ('COURSE-B', 'learner-4', 1, 'completed', None, None, None,
     T0 + 12 * DAY, None, T0 + 12 * DAY),
]
# (receiver, delivery, index, action, course, learner, cycle, at, effect)
EVENTS = [
    ('', 'd1', 0, 'CourseEnrollment', 'course-a', 'learner-1', 1, T0,
     'applied'),
    ('', 'd2', 0, 'CourseCompleted', 'course-a', 'learner-1', 1,
     T0 + 3 * DAY, 'applied'),
    ('tenant', 'd3', 0, 'CourseEnrollment', 'course-a', 'learner-1', 1,
     T0 - DAY, 'stale'),
    ('', 'd4', 0, 'CoursePublished', 'COURSE-B', None, None, T0 + DAY,
     'applied'),
    ('', 'd5', 0, 'CourseEnrollment', 'COURSE-B', 'learner-1', 1,
     T0 + 10 * DAY, 'applied'),
]


def fill(path, schema_version=1):
    db = sqlite3.connect(path)
    db.executescript(schema_sql())
    db.execute('PRAGMA user_version = %d' % store_version())
    db.execute("UPDATE enrollments_meta SET value = ? WHERE key = "
               "'schema_version'", (schema_version,))
    for cid, title in COURSES:
        db.execute('INSERT INTO courses (course_id, title, updated_at) '
                   'VALUES (?, ?, ?)', (cid, title, T0))
    for lid, email, name in LEARNERS:
        db.execute('INSERT INTO learners (learner_id, email, name, '
                   'updated_at) VALUES (?, ?, ?, ?)', (lid, email, name, T0))
    for e in ENROLLMENTS:
        db.execute('INSERT INTO enrollments (course_id, learner_id, cycle, '
                   'state, approval_requested_at, enrolled_at, started_at, '
                   'completed_at, unenrolled_at, updated_at) VALUES '
                   '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', e)
    steps = {'EnrollmentApprovalRequest': 0, 'CourseEnrollment': 1,
             'CourseStarted': 2, 'CourseCompleted': 3,
             'CourseUnenrollment': 4}
    for (receiver, delivery, index, action, course, learner, cycle, at,
         effect) in EVENTS:
        # As the tracker writes them: course events have learner ''.
        db.execute('INSERT INTO enrollment_events (receiver_id, '
                   'delivery_key, delivery_id, notification_index, action, '
                   'step, course_id, learner_id, cycle, event_at, '
                   'received_at, effect) VALUES '
                   '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                   (receiver, delivery or '', delivery, index, action,
                    steps.get(action), course, learner or '', cycle, at, T0,
                    effect))
    db.commit()
    db.close()


def latest_rows():
    """ENROLLMENTS reduced to the latest cycle of each pair."""
    last = {}
    for e in ENROLLMENTS:
        key = (e[0], e[1])
        if key not in last or e[2] > last[key][2]:
            last[key] = e
    return [e for e in ENROLLMENTS if last[(e[0], e[1])] is e]


class FilledStoreTestCase(unittest.TestCase):
    """Tests that read one data folder (`dir`) whose store (`db`) fill()
    wrote, made once for the class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix='whr-enr-')
        cls.dir = os.path.join(cls.tmp.name, 'data')
        os.mkdir(cls.dir)
        cls.db = os.path.join(cls.dir, store_file())
        fill(cls.db)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()


class FilledByHand(FilledStoreTestCase):
    def args(self, *more):
        return ['--data-dir', self.dir, *more]

    def test_list_latest_cycles_in_order_all_formats(self):
        rows = check_formats(self, self.args(), LIST_KEYS, LIST_TITLES)
        got = [(r['course_id'], r['learner_id'], r['cycle']) for r in rows]
        # By title without regard to case ("Fire..." < "Zero..." (no
        # enrollments) < "Ærø..."), then e-mail without regard to case,
        # a learner with no e-mail last.
        self.assertEqual(got, [
            ('course-a', 'learner-2', 2), ('course-a', 'learner-1', 1),
            ('course-a', 'learner-3', 1), ('course-a', 'learner-4', 1),
            ('COURSE-B', 'learner-2', 1), ('COURSE-B', 'learner-1', 1),
            ('COURSE-B', 'learner-3', 1), ('COURSE-B', 'learner-4', 1)])
        by_key = {(r['course_id'].lower(), r['learner_id']): r
                  for r in rows}
        for e in latest_rows():
            r = by_key[(e[0].lower(), e[1])]
            self.assertEqual(r['state'], e[3])
            self.assertEqual([r[k] for k in LIST_KEYS[7:]],
                             [iso(t) for t in e[4:]])
        a1 = by_key[('course-a', 'learner-1')]
        self.assertEqual(a1['course_title'], 'Fire Safety, "Basics"')
        self.assertEqual(a1['name'], 'Lærke Østergaard')
        self.assertEqual(a1['completed_at'], '2024-05-04T10:00:00Z')
        self.assertIsNone(a1['unenrolled_at'])
        b3 = by_key[('course-b', 'learner-3')]
        self.assertEqual(b3['course_title'], 'Ærø Sailing')
        self.assertEqual(b3['name'], 'Zoë "Z" Ng, Jr.')
        a4 = by_key[('course-a', 'learner-4')]
        self.assertIsNone(a4['email'])
        self.assertIsNone(a4['name'])

    def test_all_cycles(self):
        rows = as_json(self, self.args('--all-cycles'), LIST_KEYS)
        self.assertEqual(len(rows), len(ENROLLMENTS))
        a2 = [(r['cycle'], r['state']) for r in rows
              if r['course_id'] == 'course-a'
              and r['learner_id'] == 'learner-2']
        self.assertEqual(a2, [(1, 'unenrolled'), (2, 'started')])

    def test_filters(self):
        def ids(*args):
            return [(r['course_id'], r['learner_id'])
                    for r in as_json(self, self.args(*args), LIST_KEYS)]
        # Course by id (any case) and by exact title (any case, also
        # beyond ASCII); a part of a title is not enough.
        self.assertEqual(ids('--course', 'COURSE-a'), ids('--course',
                         'fire safety, "BASICS"'))
        self.assertEqual(len(ids('--course', 'course-a')), 4)
        self.assertEqual(ids('--course', 'ÆRØ SAILING'),
                         ids('--course', 'course-b'))
        self.assertEqual(len(ids('--course', 'course-b')), 4)
        self.assertEqual(ids('--course', 'Fire Safety'), [])
        # Learner by id or e-mail, any case.
        self.assertEqual(ids('--learner', 'LEARNER-2'),
                         [('course-a', 'learner-2'),
                          ('COURSE-B', 'learner-2')])
        self.assertEqual(ids('--learner', 'alex.WILBER@contoso.com'),
                         ids('--learner', 'learner-2'))
        self.assertEqual(ids('--learner', 'alex'), [])
        # State.
        self.assertEqual(ids('--state', 'completed'),
                         [('course-a', 'learner-1'), ('course-a', 'learner-4'),
                          ('COURSE-B', 'learner-3'), ('COURSE-B', 'learner-4')])
        self.assertEqual(ids('--state', 'unenrolled'),
                         [('COURSE-B', 'learner-2')])  # a-2 re-enrolled
        self.assertEqual(ids('--state', 'unenrolled', '--all-cycles'),
                         [('course-a', 'learner-2'),
                          ('COURSE-B', 'learner-2')])
        # The updated time: --since inclusive, --until exclusive.
        self.assertEqual(ids('--since', '2024-05-11T10:00:00Z'),
                         [('COURSE-B', 'learner-2'),
                          ('COURSE-B', 'learner-1'),
                          ('COURSE-B', 'learner-4')])
        self.assertEqual(ids('--since', '2024-05-11T10:00:00.000001Z'),
                         [('COURSE-B', 'learner-2'),
                          ('COURSE-B', 'learner-4')])
        self.assertEqual(ids('--since', '2024-05-06T10:00:00Z',
                             '--until', '2024-05-11T10:00:00Z'),
                         [('course-a', 'learner-3'),
                          ('course-a', 'learner-4')])
        self.assertEqual(ids('--until', '2024-05-01T22:01'),
                         [('COURSE-B', 'learner-3')])
        self.assertEqual(ids('--until', '2024-05-01T22:00'), [])
        self.assertEqual(ids('--until', '2024-05-01'), [])
        self.assertEqual(ids('--since', '1d'), [])
        # Combined, and a limit.
        self.assertEqual(ids('--course', 'course-a', '--learner',
                             'learner-4', '--state', 'completed'),
                         [('course-a', 'learner-4')])
        self.assertEqual(ids('--limit', '3'), ids()[:3])
        self.assertEqual(ids('--limit', '0'), ids())

    def test_nothing_matches(self):
        self.assertEqual(run_ok(self, self.args('--learner', 'nobody')),
                         'no enrollments\n')
        self.assertEqual(run_ok(self, self.args('--learner', 'nobody',
                                                '--format', 'json')), '[]\n')
        self.assertEqual(run_ok(self, self.args('--learner', 'nobody',
                                                '--format', 'csv')),
                         ','.join(LIST_KEYS) + '\r\n')
        self.assertEqual(run_ok(self, self.args('history', '--course', 'x')),
                         'no enrollment events\n')
        self.assertEqual(run_ok(self, self.args('summary', '--course', 'x')),
                         'no courses\n')

    def test_summary(self):
        rows = check_formats(self, self.args('summary'), SUMMARY_KEYS,
                             SUMMARY_TITLES)
        self.assertEqual(rows, [
            # latest: a-1 completed (3 d), a-2 started, a-3 approval,
            # a-4 completed (2 d): median 2.5
            {'course_id': 'course-a', 'course_title': 'Fire Safety, "Basics"',
             'enrolled': 3, 'started': 3, 'completed': 2, 'unenrolled': 0,
             'awaiting_approval': 1, 'completion_rate': 66.7,
             'median_days_to_complete': 2.5},
            {'course_id': 'course-c', 'course_title': 'Zero\nLearners',
             'enrolled': 0, 'started': 0, 'completed': 0, 'unenrolled': 0,
             'awaiting_approval': 0, 'completion_rate': None,
             'median_days_to_complete': None},
            # b-4 completed without an enrolled time: counted, but not in
            # the median (b-3: half a day)
            {'course_id': 'COURSE-B', 'course_title': 'Ærø Sailing',
             'enrolled': 3, 'started': 2, 'completed': 2, 'unenrolled': 1,
             'awaiting_approval': 0, 'completion_rate': 66.7,
             'median_days_to_complete': 0.5}])
        # The title's line end is a space in the table.
        self.assertIn('Zero Learners', run_ok(self, self.args('summary')))
        only = as_json(self, self.args('summary', '--course', 'zero\nLEARNERS'),
                       SUMMARY_KEYS)
        self.assertEqual([r['course_id'] for r in only], ['course-c'])
        # The window counts enrollments updated in it: in course-a only
        # a-1 (day 3) and a-2 (day 4).
        window = as_json(self, self.args('summary', '--course', 'course-a',
                                         '--since', '2024-05-04T10:00:00Z',
                                         '--until', '2024-05-06T00:00:00Z'),
                         SUMMARY_KEYS)
        self.assertEqual(window, [
            {'course_id': 'course-a', 'course_title': 'Fire Safety, "Basics"',
             'enrolled': 2, 'started': 2, 'completed': 1, 'unenrolled': 0,
             'awaiting_approval': 0, 'completion_rate': 50.0,
             'median_days_to_complete': 3.0}])

    def test_history(self):
        rows = check_formats(self, self.args('history'), HISTORY_KEYS,
                             HISTORY_TITLES)
        self.assertEqual([(r['delivery_id'], r['effect'], r['receiver'])
                          for r in rows],
                         [('d3', 'stale', 'tenant'), ('d1', 'applied', None),
                          ('d4', 'applied', None), ('d2', 'applied', None),
                          ('d5', 'applied', None)])
        self.assertEqual(rows[0]['event_at'], '2024-04-30T10:00:00Z')
        self.assertEqual(rows[0]['name'], 'Lærke Østergaard')
        self.assertIsNone(rows[2]['learner_id'])
        self.assertEqual(rows[2]['course_title'], 'Ærø Sailing')
        learner = as_json(self, self.args('history', '--learner',
                                          'LAERKE.OSTERGAARD@contoso.com',
                                          '--course', 'course-a'),
                          HISTORY_KEYS)
        self.assertEqual([r['delivery_id'] for r in learner],
                         ['d3', 'd1', 'd2'])
        since = as_json(self, self.args('history', '--since',
                                        '2024-05-02T10:00:00Z', '--limit',
                                        '1'), HISTORY_KEYS)
        self.assertEqual([r['delivery_id'] for r in since], ['d4'])

    def test_reads_only(self):
        def state():
            with open(self.db, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            return digest, sorted(os.listdir(self.dir))
        before = state()
        for args in ([], ['summary'], ['history', '--format', 'csv']):
            run_ok(self, self.args(*args))
        self.assertEqual(state(), before)
        # A data folder we may not write to is enough.
        if os.geteuid() == 0 and shutil.which('setpriv') is None:
            self.skipTest('root without setpriv: cannot drop file access')
        ro = os.path.join(self.tmp.name, 'ro')
        os.mkdir(ro)
        shutil.copy(self.db, os.path.join(ro, store_file()))
        os.chmod(os.path.join(ro, store_file()), 0o444)
        os.chmod(ro, 0o555)
        try:
            rc, out, err = enrollments(['--data-dir', ro, '--format', 'json'],
                                       without_root_file_access=True)
        finally:
            os.chmod(ro, 0o755)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(json.loads(out)), len(latest_rows()))

    def test_controls_in_a_table_are_spaces(self):
        # A title from outside must not steer the terminal: C1 controls
        # (CSI, U+009B) and bidirectional overrides are blanked as the
        # C0 ones are. CSV and JSON keep the text as it is.
        tmp = tempfile.TemporaryDirectory(prefix='whr-enr-')
        self.addCleanup(tmp.cleanup)
        fill(os.path.join(tmp.name, store_file()))
        db = sqlite3.connect(os.path.join(tmp.name, store_file()))
        title = 'Zero\u009b31mRed\u202eTxeN\u2066x\u0085y\x1bz'
        db.execute("UPDATE courses SET title = ? WHERE course_id = "
                   "'course-c'", (title,))
        db.commit()
        db.close()
        out = run_ok(self, ['summary', '--data-dir', tmp.name])
        self.assertIn('Zero 31mRed TxeN x y z', out)
        for c in '\u009b\u202e\u2066\u0085\x1b':
            self.assertNotIn(c, out)
        rows = as_json(self, ['summary', '--data-dir', tmp.name],
                       SUMMARY_KEYS)
        self.assertIn(title, [r['course_title'] for r in rows])

    def test_text_that_is_not_utf8_is_mended(self):
        tmp = tempfile.TemporaryDirectory(prefix='whr-enr-')
        self.addCleanup(tmp.cleanup)
        fill(os.path.join(tmp.name, store_file()))
        db = sqlite3.connect(os.path.join(tmp.name, store_file()))
        db.execute("UPDATE learners SET name = CAST(x'41ff42c3' AS TEXT) "
                   "WHERE learner_id = 'learner-2'")
        db.commit()
        db.close()
        args = ['--data-dir', tmp.name, '--learner', 'learner-2']
        rows = as_json(self, args, LIST_KEYS)
        self.assertEqual({r['name'] for r in rows}, {'A\ufffdB\ufffd'})
        records = as_csv(self, args, LIST_KEYS)
        self.assertEqual({r['name'] for r in records}, {'A\ufffdB\ufffd'})
        self.assertIn('  A?B?  ', run_ok(self, args))

    def test_options_after_the_command(self):
        """--data-dir and --format go before the command word or after
        it, with the same result."""
        for cmd in ('list', 'summary', 'history'):
            with self.subTest(cmd=cmd):
                first = run_ok(self, ['--data-dir', self.dir, '--format',
                                      'json', cmd])
                self.assertTrue(json.loads(first))
                for args in ([cmd, '--data-dir', self.dir, '--format',
                              'json'],
                             ['--format', 'json', cmd, '--data-dir',
                              self.dir],
                             [cmd, '--format=json', '--data-dir=' +
                              self.dir]):
                    self.assertEqual(run_ok(self, args), first, args)

    def test_data_dir_from_environment(self):
        out = run_ok(self, ['summary', '--format', 'json'],
                     env={'WHR_DATA_DIR': self.dir})
        self.assertEqual(len(json.loads(out)), 3)
        # --data-dir wins over WHR_DATA_DIR.
        rc, _, err = enrollments(['--data-dir', self.dir + '-none'],
                                 env={'WHR_DATA_DIR': self.dir})
        self.assertEqual(rc, 1, err)

    def test_options_before_or_after_the_command(self):
        after = run_ok(self, self.args('summary', '--format', 'csv'))
        self.assertTrue(after.startswith('course_id,'), after)
        self.assertEqual(run_ok(self, ['--format', 'csv', '--data-dir',
                                       self.dir, 'summary']), after)
        self.assertEqual(run_ok(self, ['--format=csv', 'summary',
                                       '--data-dir=' + self.dir]), after)
        self.assertEqual(run_ok(self, self.args('list')),
                         run_ok(self, self.args()))

    def test_help(self):
        for args, options in (
                ([], ['list', 'summary', 'history', '--course', '--learner',
                      '--state', '--since', '--until', '--all-cycles',
                      '--limit', '--data-dir', '--format']),
                (['list'], ['--course', '--learner', '--state', '--since',
                            '--until', '--all-cycles', '--limit',
                            '--data-dir', '--format', 'WHR_DATA_DIR']),
                (['summary'], ['--course', '--since', '--until',
                               '--data-dir', '--format', 'completion_rate',
                               'median_days_to_complete']),
                (['history'], ['--course', '--learner', '--since',
                               '--until', '--limit', '--data-dir',
                               '--format'])):
            rc, out, err = enrollments([*args, '--help'])
            self.assertEqual((rc, err), (0, ''), args)
            self.assertTrue(out.startswith('Usage: whr enrollments'), out)
            for o in options:
                self.assertIn(o, out, args)
            self.assertIn('Exit status', out)


# ---- errors ------------------------------------------------------------------

class Errors(FilledStoreTestCase):
    def fails(self, args, status, message, env=None):
        rc, out, err = enrollments(args, env)
        self.assertEqual(rc, status, '%s: %s' % (args, err))
        self.assertEqual(out, '', args)
        self.assertIn(message, err, args)
        self.assertTrue(err.startswith('whr enrollments: '), err)
        self.assertEqual(len(err.splitlines()), 1, err)
        return err

    def test_usage_errors(self):
        d = ['--data-dir', self.dir]
        cases = [
            (['--nosuch'], "unknown or ambiguous option '--nosuch'"),
            (['-x'], "unknown option '-x'"),
            (['--format', 'xml'],
             "unknown format 'xml': use table, csv or json"),
            (['--format=TABLE'], "unknown format 'TABLE'"),
            (['--state', 'done'],
             "unknown state 'done': use approval_requested, enrolled, "
             "started, completed or unenrolled"),
            (['--state', 'Enrolled'], "unknown state 'Enrolled'"),
            (['--since', 'yesterday'], "bad --since 'yesterday'"),
            (['--since', '2024-05-01T10:15:30Zjunk'], 'bad --since'),
            (['--since', '-1d'], 'bad --since'),
            (['--since', '7w'], "bad --since '7w'"),
            (['--since', 'nan'], 'bad --since'),
            (['--until', '2024-13-01'], "bad --until '2024-13-01'"),
            (['--until', '2024-05-01T25:00'], 'bad --until'),
            (['--limit', '-1'], "bad --limit '-1'"),
            (['--limit', '10x'], "bad --limit '10x'"),
            (['--course'], '--course needs a value'),
            (['--all-cycles=yes'], "option '--all-cycles' takes no value"),
            (['list', 'extra'], "unexpected argument 'extra'"),
            (['summary', 'list'], "unexpected argument 'list'"),
            (['frobnicate'], "unknown command 'frobnicate'"),
            (['summary', '--state', 'enrolled'],
             '--state does not apply to summary'),
            (['summary', '--learner', 'x'],
             '--learner does not apply to summary'),
            (['summary', '--limit', '3'], '--limit does not apply to summary'),
            (['history', '--all-cycles'],
             '--all-cycles does not apply to history'),
            (['history', '--state', 'enrolled'],
             '--state does not apply to history'),
            (['--data-dir', ''], '--data-dir needs a folder'),
        ]
        if w.wrapped():
            # Under valgrind each run takes a second: every other case
            # (the same option parser) keeps the test well inside its
            # time; the plain and sanitizer runs check them all.
            cases = cases[::2]
        for args, message in cases:
            with self.subTest(args=args):
                err = self.fails(d + args, 2, message)
                self.assertIn('(see whr enrollments --help)', err)

    def test_runtime_errors(self):
        missing = os.path.join(self.tmp.name, 'missing')
        self.fails(['--data-dir', missing], 1,
                   'no data folder %s: No such file or directory' % missing)
        self.fails([], 1, 'no data folder ./whr-data')
        a_file = os.path.join(self.tmp.name, 'file')
        with open(a_file, 'w') as f:
            f.write('x')
        self.fails(['--data-dir', a_file], 1,
                   'no data folder %s: not a directory' % a_file)
        empty = os.path.join(self.tmp.name, 'empty')
        os.mkdir(empty)
        self.fails(['summary', '--data-dir', empty], 1,
                   'no database in %s' % empty)
        junk = os.path.join(self.tmp.name, 'junk')
        os.mkdir(junk)
        with open(os.path.join(junk, store_file()), 'wb') as f:
            f.write(b'this is not SQLite' * 100)
        self.fails(['--data-dir', junk], 1, 'is not a whr database')
        # An inbox without the tracker's tables.
        bare = os.path.join(self.tmp.name, 'bare')
        os.mkdir(bare)
        db = sqlite3.connect(os.path.join(bare, store_file()))
        db.execute('PRAGMA user_version = %d' % store_version())
        db.execute('CREATE TABLE t (x)')
        db.close()
        for cmd in ('list', 'summary', 'history'):
            self.fails([cmd, '--data-dir', bare], 1,
                       'no enrollment data in %s: was whr serve run with '
                       '--no-enrollments?' % bare)
        # Output that cannot be written.
        if os.path.exists('/dev/full'):
            with open('/dev/full', 'wb') as full:
                p = subprocess.run(
                    w.command('whr-raw', ['enrollments', '--data-dir',
                                          self.dir, '--format', 'json']),
                    env=w.minimal_env(), stdin=subprocess.DEVNULL,
                    stdout=full, stderr=subprocess.PIPE, timeout=w.slow(10))
            err = '\n'.join(w.program_lines(p.stderr.decode()))
            self.assertEqual((p.returncode, err),
                             (1, 'whr enrollments: cannot write the output: '
                              'No space left on device'))
        # Tables newer than this whr.
        newer = os.path.join(self.tmp.name, 'newer')
        os.mkdir(newer)
        fill(os.path.join(newer, store_file()), schema_version=99)
        self.fails(['--data-dir', newer], 1,
                   'have schema version 99; this whr reads 1')


# ---- through the real server -------------------------------------------------

def sample(action):
    """Notification 0 of samples/ACTION.json."""
    root = os.environ['WHR_SOURCE_ROOT']
    with open(os.path.join(root, 'samples', action + '.json'),
              encoding='utf-8') as f:
        return json.load(f)['Notifications'][0]


ENROLL = sample('CourseEnrollment')
COURSE_X = dict(ENROLL['Course'])       # Fire Safety Basics
ALEX, LAERKE = ENROLL['Users']
COURSE_Y = dict(sample('CourseStarted')['Course'],
                Title='Onboarding, "Nordics" edition')


def user(uid, name, email):
    return dict(ALEX, Id=uid, Title=name, Email=email,
                EnrollmentId=os.urandom(16).hex(),
                LoginName='i:0#.f|membership|' + email)


MEGAN = user('0a6f4e1e-7f3c-4f0e-9a53-4f1e9b8f1a01', 'Megan Bowen',
             'megan.bowen@contoso.com')
DIEGO = user('0a6f4e1e-7f3c-4f0e-9a53-4f1e9b8f1a02', 'Diego Siciliani',
             'diego.siciliani@contoso.com')
PATTI = user('0a6f4e1e-7f3c-4f0e-9a53-4f1e9b8f1a03', 'Patti Fernandez',
             'patti.fernandez@contoso.com')

# (action, course, users, TimeStamp), sent in this order, one delivery
# each, each handled before the next is sent.
STEPS = [
    ('CourseEnrollment', COURSE_X, [ALEX, LAERKE], '2024-05-01T10:00:00Z'),
    ('CourseStarted', COURSE_X, [ALEX], '2024-05-02T10:00:00Z'),
    ('CourseCompleted', COURSE_X, [LAERKE], '2024-05-02T20:24:00Z'),
    ('CourseCompleted', COURSE_X, [ALEX], '2024-05-04T10:00:00Z'),
    ('EnrollmentApprovalRequest', COURSE_X, [MEGAN], '2024-05-03T09:00:00Z'),
    ('CourseEnrollment', COURSE_X, [DIEGO, PATTI], '2024-05-01T12:00:00Z'),
    ('CourseUnenrollment', COURSE_X, [DIEGO, PATTI], '2024-05-05T12:00:00Z'),
    ('CourseEnrollment', COURSE_X, [PATTI], '2024-05-07T12:00:00Z'),
    ('CourseEnrollment', COURSE_Y, [LAERKE], '2024-05-03T08:00:00Z'),
    ('CourseStarted', COURSE_Y, [LAERKE], '2024-05-03T09:30:00Z'),
]
STATUS = {'CourseEnrollment': (0, 'Enrolled'),
          'CourseStarted': (1, 'InProgress'),
          'CourseCompleted': (2, 'Completed'),
          'EnrollmentApprovalRequest': (3, 'PendingApproval'),
          'CourseUnenrollment': (4, 'Unenrolled')}


def notification(action, course, users, stamp):
    n = dict(ENROLL)
    n['Action'] = action
    n['EnrollmentStatus'], n['EnrollmentStatusText'] = STATUS[action]
    n['Course'] = course
    n['Users'] = users
    n['TimeStamp'] = stamp
    return n


def days(a, b):
    return (us(b) - us(a)) / DAY


class ThroughTheServer(unittest.TestCase):
    """One server, fed once; the reports are read while it runs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix='whr-enr-')
        cls.dir = os.path.join(cls.tmp.name, 'data')
        cls.srv = w.Server(['--data-dir', cls.dir], env=ENV)
        cls.delivery_ids = []
        try:
            for i, step in enumerate(STEPS):
                body_id = os.urandom(16).hex()
                body = w.delivery(id=body_id,
                                  notifications=[notification(*step)])
                r = w.post(cls.srv.port, body, SECRET)
                if r.status != 200:
                    raise AssertionError('step %d: %r' % (i, r))
                cls.delivery_ids.append(body_id)
                cls.wait_done(i + 1)
        except BaseException:
            sys.stderr.write(cls.srv.log())
            cls.srv.cleanup()
            cls.tmp.cleanup()
            raise

    @classmethod
    def wait_done(cls, count, timeout=10):
        path = 'file:%s/%s?mode=ro' % (cls.dir, store_file())
        deadline = time.monotonic() + w.slow(timeout)
        while True:
            with sqlite3.connect(path, uri=True, timeout=10) as db:
                rows = dict(db.execute('SELECT state, count(*) FROM '
                                       'notifications GROUP BY state'))
            if rows.get('done', 0) >= count and len(rows) == 1:
                return
            if set(rows) - {'done', 'pending'}:
                raise AssertionError('notifications: %r' % rows)
            if time.monotonic() > deadline:
                raise AssertionError('notifications %r after %.1f s'
                                     % (rows, w.slow(timeout)))
            time.sleep(0.02)

    @classmethod
    def tearDownClass(cls):
        w.stop_and_clean(cls.srv, cls.tmp)

    def args(self, *more):
        return ['--data-dir', self.dir, *more]

    def test_list(self):
        self.assertTrue(self.srv.running())
        rows = check_formats(self, self.args(), LIST_KEYS, LIST_TITLES)
        got = [(r['course_title'], r['email'], r['state'], r['cycle'])
               for r in rows]
        self.assertEqual(got, [
            ('Fire Safety Basics', ALEX['Email'], 'completed', 1),
            ('Fire Safety Basics', DIEGO['Email'], 'unenrolled', 1),
            ('Fire Safety Basics', LAERKE['Email'], 'completed', 1),
            ('Fire Safety Basics', MEGAN['Email'], 'approval_requested', 1),
            ('Fire Safety Basics', PATTI['Email'], 'enrolled', 2),
            ('Onboarding, "Nordics" edition', LAERKE['Email'], 'started',
             1)])
        alex = rows[0]
        self.assertEqual(alex['course_id'], COURSE_X['Id'])
        self.assertEqual(alex['learner_id'], ALEX['Id'])
        self.assertEqual(alex['name'], 'Alex Wilber')
        self.assertEqual((alex['enrolled_at'], alex['started_at'],
                          alex['completed_at'], alex['updated_at']),
                         ('2024-05-01T10:00:00Z', '2024-05-02T10:00:00Z',
                          '2024-05-04T10:00:00Z', '2024-05-04T10:00:00Z'))
        self.assertIsNone(alex['unenrolled_at'])
        laerke = rows[2]
        self.assertEqual(laerke['name'], 'Lærke Østergaard')
        self.assertEqual(laerke['completed_at'], '2024-05-02T20:24:00Z')
        self.assertEqual(rows[3]['approval_requested_at'],
                         '2024-05-03T09:00:00Z')
        self.assertEqual(rows[1]['unenrolled_at'], '2024-05-05T12:00:00Z')
        self.assertEqual(rows[4]['enrolled_at'], '2024-05-07T12:00:00Z')
        csv_rows = as_csv(self, self.args(), LIST_KEYS)
        self.assertEqual(csv_rows[2]['name'], 'Lærke Østergaard')
        self.assertEqual(csv_rows[5]['course_title'],
                         'Onboarding, "Nordics" edition')
        table = run_ok(self, self.args())
        self.assertIn('  Lærke Østergaard  ', table)
        self.assertIn('  Onboarding, "Nordics" edition  ', table)

    def test_cycles(self):
        rows = as_json(self, self.args('--all-cycles', '--learner',
                                       PATTI['Email']), LIST_KEYS)
        self.assertEqual([(r['cycle'], r['state']) for r in rows],
                         [(1, 'unenrolled'), (2, 'enrolled')])
        self.assertEqual(rows[0]['unenrolled_at'], '2024-05-05T12:00:00Z')

    def test_filters(self):
        def emails(*args):
            return [(r['course_title'], r['email'])
                    for r in as_json(self, self.args(*args), LIST_KEYS)]
        by_id = emails('--course', COURSE_Y['Id'].upper())
        self.assertEqual(by_id, [(COURSE_Y['Title'], LAERKE['Email'])])
        self.assertEqual(emails('--course', 'onboarding, "NORDICS" edition'),
                         by_id)
        self.assertEqual(len(emails('--course', 'Fire Safety Basics')), 5)
        self.assertEqual(emails('--learner', LAERKE['Id']),
                         [('Fire Safety Basics', LAERKE['Email']),
                          (COURSE_Y['Title'], LAERKE['Email'])])
        self.assertEqual(emails('--learner', LAERKE['Email'].upper()),
                         emails('--learner', LAERKE['Id']))
        self.assertEqual(emails('--state', 'completed'),
                         [('Fire Safety Basics', ALEX['Email']),
                          ('Fire Safety Basics', LAERKE['Email'])])
        self.assertEqual(emails('--since', '2024-05-04T10:00:00Z',
                                '--until', '2024-05-07T12:00:00Z'),
                         [('Fire Safety Basics', ALEX['Email']),
                          ('Fire Safety Basics', DIEGO['Email'])])

    def test_summary(self):
        rows = check_formats(self, self.args('summary'), SUMMARY_KEYS,
                             SUMMARY_TITLES)
        median = (days('2024-05-01T10:00:00Z', '2024-05-04T10:00:00Z') +
                  days('2024-05-01T10:00:00Z', '2024-05-02T20:24:00Z')) / 2
        self.assertEqual(rows, [
            # Alex, Lærke completed; Patti enrolled again; Diego out;
            # Megan waits.
            {'course_id': COURSE_X['Id'], 'course_title': COURSE_X['Title'],
             'enrolled': 3, 'started': 2, 'completed': 2, 'unenrolled': 1,
             'awaiting_approval': 1,
             'completion_rate': float('%.1f' % (100 * 2 / 3)),
             'median_days_to_complete': float('%.1f' % median)},
            {'course_id': COURSE_Y['Id'], 'course_title': COURSE_Y['Title'],
             'enrolled': 1, 'started': 1, 'completed': 0, 'unenrolled': 0,
             'awaiting_approval': 0, 'completion_rate': 0.0,
             'median_days_to_complete': None}])
        self.assertEqual(rows[0]['completion_rate'], 66.7)
        self.assertEqual(rows[0]['median_days_to_complete'], 2.2)
        one = as_json(self, self.args('summary', '--course',
                                      'fire safety basics'), SUMMARY_KEYS)
        self.assertEqual(one, rows[:1])

    def test_history(self):
        rows = check_formats(self, self.args('history'), HISTORY_KEYS,
                             HISTORY_TITLES)
        # By the TimeStamp, then in the order applied (Users' order).
        sent = sorted(((us(stamp), i, j, action, u['Id'])
                       for i, (action, course, users, stamp)
                       in enumerate(STEPS) for j, u in enumerate(users)))
        self.assertEqual([(r['event_at'], r['action'], r['learner_id'],
                           r['delivery_id']) for r in rows],
                         [(iso(t), action, uid, self.delivery_ids[i])
                          for t, i, j, action, uid in sent])
        self.assertEqual({r['effect'] for r in rows}, {'applied'})
        self.assertEqual({r['receiver'] for r in rows}, {None})
        patti = as_json(self, self.args('history', '--learner', PATTI['Id']),
                        HISTORY_KEYS)
        self.assertEqual([(r['action'], r['cycle']) for r in patti],
                         [('CourseEnrollment', 1), ('CourseUnenrollment', 1),
                          ('CourseEnrollment', 2)])
        y = as_json(self, self.args('history', '--course', COURSE_Y['Title'],
                                    '--until', '2024-05-03T09:00:00Z'),
                    HISTORY_KEYS)
        self.assertEqual([(r['action'], r['name']) for r in y],
                         [('CourseEnrollment', 'Lærke Østergaard')])


class WhileWriting(unittest.TestCase):
    def test_reads_while_the_server_writes(self):
        import threading
        learners = [user('1b7f0000-0000-4000-8000-%012d' % i,
                         'Learner %d' % i, 'learner%d@contoso.com' % i)
                    for i in range(20)]
        with tempfile.TemporaryDirectory(prefix='whr-enr-') as tmp:
            data = os.path.join(tmp, 'data')
            with w.Server(['--data-dir', data], env=ENV) as srv:
                statuses = []

                def send():
                    for u in learners:
                        body = w.delivery(notifications=[notification(
                            'CourseEnrollment', COURSE_X, [u],
                            '2024-06-01T08:00:00Z')])
                        statuses.append(w.post(srv.port, body, SECRET).status)

                sender = threading.Thread(target=send)
                sender.start()
                counts = []
                try:
                    deadline = time.monotonic() + w.slow(10)
                    while True:
                        # The tracker makes its tables before the server
                        # is ready: every read succeeds, sees a snapshot.
                        rc, out, err = enrollments(['--data-dir', data,
                                                    '--format', 'json'])
                        self.assertEqual(rc, 0, err)
                        counts.append(len(json.loads(out)))
                        if (counts[-1] == len(learners)
                                or time.monotonic() > deadline):
                            break
                finally:
                    sender.join()
                self.assertEqual(statuses, [200] * len(learners))
                self.assertEqual(counts, sorted(counts))
                self.assertEqual(counts[-1], len(learners), counts)


class NoTracker(unittest.TestCase):
    def test_server_without_the_tracker(self):
        with tempfile.TemporaryDirectory(prefix='whr-enr-') as tmp:
            data = os.path.join(tmp, 'data')
            with w.Server(['--data-dir', data, '--no-enrollments'],
                          env=ENV) as srv:
                body = w.delivery(notifications=[notification(*STEPS[0])])
                self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
                rc, out, err = enrollments(['--data-dir', data])
            self.assertEqual((rc, out), (1, ''), err)
            self.assertEqual(err, 'whr enrollments: no enrollment data in '
                             '%s: was whr serve run with --no-enrollments?'
                             % data)


if __name__ == '__main__':
    w.main()
