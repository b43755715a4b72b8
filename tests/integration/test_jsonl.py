"""The jsonl handler (`whr serve --handler jsonl:PATH`): one JSON object
per notification, one line each, against the real server and real files;
its errors at start and while writing; SIGHUP to reopen the file, and
SIGHUP to a server without one."""

import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
import whrtest.server  # noqa: E402
from whrtest import WEBHOOK  # noqa: E402

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           '..', '..', 'samples')
SAMPLE_ACTIONS = ('CourseEnrollment', 'CourseUnenrollment', 'CourseStarted',
                  'CourseCompleted', 'EnrollmentApprovalRequest',
                  'CoursePublished', 'CourseUnpublished')
SECRET = w.secret('jsonl', 40)
TENANT_SECRET = w.secret('jsonl-tenant', 40)
ENV = {'MS_WebHookReceiverSecret_Custom':
       '%s, Tenant-J=%s' % (SECRET, TENANT_SECRET)}
MEMBERS = ['receiver_id', 'delivery_id', 'attempt', 'action', 'index',
           'count', 'received_at', 'notification']
RECEIVED_AT = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$')


def sample_bytes(action):
    with open(os.path.join(SAMPLES_DIR, action + '.json'), 'rb') as f:
        return f.read()


def read_lines(path):
    """The file's lines, each checked to be whole (ends with LF) and
    parsed; returns [(raw bytes, object)]."""
    with open(path, 'rb') as f:
        data = f.read()
    if data and not data.endswith(b'\n'):
        raise AssertionError('%s ends in a partial line: %r'
                             % (path, data[-200:]))
    out = []
    for raw in data.split(b'\n')[:-1]:
        try:
            obj = json.loads(raw.decode('utf-8'))
        except ValueError as e:
            raise AssertionError('not one JSON object (%s): %r' % (e, raw))
        out.append((raw, obj))
    return out


def wait_lines(path, count, timeout=10):
    """Poll until @path has @count lines, then a moment more so that an
    extra line shows up too; returns the parsed lines."""
    deadline = time.monotonic() + w.slow(timeout)
    while True:
        lines = read_lines(path) if os.path.exists(path) else []
        if len(lines) >= count:
            break
        if time.monotonic() > deadline:
            raise AssertionError('%d lines in %s, expected %d, within '
                                 '%.1f s' % (len(lines), path, count,
                                             w.slow(timeout)))
        time.sleep(0.01)
    time.sleep(0.1)
    return read_lines(path)


def utc_us(text):
    """received_at back to microseconds since the epoch."""
    secs = calendar.timegm(time.strptime(text[:19], '%Y-%m-%dT%H:%M:%S'))
    return secs * 1000000 + int(text[20:26])


class Files:
    """A folder for the jsonl file and the inbox, outliving a server."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-jsonl-')
        self.path = os.path.join(self.tmp.name, 'events.jsonl')
        self.data = os.path.join(self.tmp.name, 'data')

    def args(self, *more, path=None):
        return ['--no-enrollments', '--data-dir', self.data,
                '--handler', 'jsonl:' + (path or self.path), *more]

    def query(self, sql, *args):
        return w.inbox_query(self.data, sql, *args)

    def cleanup(self):
        self.tmp.cleanup()


class Lines(unittest.TestCase):
    """One server with one jsonl file for the format tests."""

    @classmethod
    def setUpClass(cls):
        cls.files = Files()
        cls.srv = w.Server(cls.files.args(), env=ENV)

    @classmethod
    def tearDownClass(cls):
        w.stop_and_clean(cls.srv, cls.files)

    def setUp(self):
        self.seen = len(read_lines(self.files.path))

    def new_lines(self, count):
        return wait_lines(self.files.path, self.seen + count)[self.seen:]

    def check_line(self, raw, obj, body, index, before, after,
                   receiver=''):
        """One line against the delivery @body it came from."""
        sent = json.loads(body.decode('utf-8-sig'))
        self.assertEqual(list(obj), MEMBERS)
        self.assertNotIn(b'\r', raw)
        self.assertEqual(obj['receiver_id'], receiver)
        self.assertEqual(obj['delivery_id'], sent.get('Id'))
        self.assertEqual(obj['attempt'], sent.get('Attempt', 0))
        self.assertEqual(obj['index'], index)
        self.assertEqual(obj['count'], len(sent['Notifications']))
        self.assertEqual(obj['notification'], sent['Notifications'][index])
        self.assertEqual(obj['action'],
                         sent['Notifications'][index].get('Action'))
        self.assertRegex(obj['received_at'], RECEIVED_AT)
        at = utc_us(obj['received_at'])
        self.assertGreaterEqual(at, before - 2000)
        self.assertLessEqual(at, after + 2000)
        # Whitespace outside strings goes; inside them every byte stays.
        start, end = w.notification_spans(body)[index]
        original = body[start:end]
        note = raw[raw.index(b'"notification":') + 15:-1]
        self.assertEqual(note, compact(original))

    def test_every_sample(self):
        for k, action in enumerate(SAMPLE_ACTIONS):
            with self.subTest(action=action):
                body = sample_bytes(action)
                self.assertIn(b'\r\n  ', body)      # indented, CRLF
                before = time.time_ns() // 1000
                r = w.post(self.srv.port, body, SECRET)
                after = time.time_ns() // 1000
                self.assertEqual(r.status, 200, r)
                (raw, obj), = wait_lines(self.files.path,
                                         self.seen + k + 1)[self.seen + k:]
                self.assertEqual(obj['action'], action)
                self.check_line(raw, obj, body, 0, before, after)

    def test_several_notifications_in_order(self):
        notes = [
            {'Action': 'a1', 'Text': 'two  spaces,\ttab, "quotes", \\ and '
                                     'a\r\nbreak', 'n': 0},
            {'Action': 'S\u00e9curit\u00e9 \u2603 \U0001f600', 'n': 1,
             'List': [1, 2.5, -3e2, True, False, None, {}, []]},
            {'n': 2, 'Nested': {'Deep': {'Key': ' x '}}},
            {'Action': None, 'n': 3},
        ]
        body = w.delivery(id='multi-' + os.urandom(8).hex(), attempt=4,
                          notifications=notes,
                          properties={'p': 'v'})
        before = time.time_ns() // 1000
        r = w.post(self.srv.port, body, TENANT_SECRET,
                   path=WEBHOOK + '/tenant-j')
        after = time.time_ns() // 1000
        self.assertEqual(r.status, 200, r)
        lines = self.new_lines(len(notes))
        self.assertEqual(len(lines), len(notes))
        # Notifications naming no learner and course run in order.
        self.assertEqual([obj['index'] for _, obj in lines], [0, 1, 2, 3])
        for i, (raw, obj) in enumerate(lines):
            self.check_line(raw, obj, body, i, before, after,
                            receiver='tenant-j')
        self.assertEqual(lines[0][1]['notification']['Text'],
                         notes[0]['Text'])
        self.assertIsNone(lines[2][1]['action'])
        self.assertIsNone(lines[3][1]['action'])
        self.assertEqual(len({obj['received_at'] for _, obj in lines}), 1)

    def test_indented_crlf_body_one_line_each(self):
        notes = [{'Action': 'CourseStarted', 'Course': {'Id': 'c%d' % i},
                  'Users': [{'Id': 'u%d' % i, 'Email': 'e%d@x' % i}]}
                 for i in range(3)]
        body = w.delivery(notifications=notes, crlf=True)
        self.assertGreater(body.count(b'\r\n'), 20)
        r = w.post(self.srv.port, body, SECRET)
        self.assertEqual(r.status, 200, r)
        lines = self.new_lines(3)
        self.assertEqual(len(lines), 3)
        by_index = {obj['index']: (raw, obj) for raw, obj in lines}
        self.assertEqual(sorted(by_index), [0, 1, 2])
        for i, (raw, obj) in by_index.items():
            self.check_line(raw, obj, body, i, 0, 2 ** 62)

    def test_strange_ids_escaped(self):
        # An Id and an Action needing escapes; a body without Attempt.
        ident = 'id "q" \\ \u00e9 \t\u0001 \u2028'
        body = json.dumps({'Id': ident, 'Notifications': [
            {'Action': 'A\n"B"\u0000C'}]}).encode('utf-8')
        r = w.post(self.srv.port, body, SECRET)
        self.assertEqual(r.status, 200, r)
        (raw, obj), = self.new_lines(1)
        self.assertEqual(obj['delivery_id'], ident)
        self.assertEqual(obj['attempt'], 0)
        self.assertEqual(obj['notification'], {'Action': 'A\n"B"\u0000C'})
        self.assertNotIn(b'\n', raw)

    def test_resend_adds_no_line(self):
        ident = os.urandom(16).hex()
        body = w.delivery(id=ident, notifications=[{'Action': 'x'}])
        r = w.post(self.srv.port, body, SECRET)
        self.assertEqual(r.status, 200, r)
        self.new_lines(1)
        again = w.delivery(id=ident, attempt=2,
                           notifications=[{'Action': 'x'}])
        r = w.post(self.srv.port, again, SECRET)
        self.assertEqual(r.status, 200, r)
        r = w.post(self.srv.port, body, SECRET)
        self.assertEqual(r.status, 200, r)
        # A different delivery after them: once it is there, a line for
        # the resends would be too (one delivery after another).
        marker = w.delivery(notifications=[{'Action': 'after'}])
        r = w.post(self.srv.port, marker, SECRET)
        self.assertEqual(r.status, 200, r)
        lines = self.new_lines(2)
        self.assertEqual([obj['delivery_id'] for _, obj in lines],
                         [ident, json.loads(marker)['Id']])


def compact(json_bytes):
    """@json_bytes without whitespace outside strings, by a scanner of
    the test's own."""
    out = bytearray()
    in_string = escaped = False
    for c in json_bytes:
        if in_string:
            out.append(c)
            if escaped:
                escaped = False
            elif c == 0x5c:
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c in b' \t\r\n':
            continue
        else:
            out.append(c)
            if c == 0x22:
                in_string = True
    return bytes(out)


class Concurrency(unittest.TestCase):

    def test_200_deliveries_on_20_connections(self):
        files = Files()
        self.addCleanup(files.cleanup)
        per_conn, conns = 10, 20
        # Long lines (several KiB) make interleaving visible if it
        # happened: each carries its own marker throughout.
        bodies = {}
        for c in range(conns):
            for k in range(per_conn):
                m = 'm%02d-%02d' % (c, k)
                bodies[m] = w.delivery(id=m + '-' + os.urandom(4).hex(),
                                       notifications=[{
                                           'Action': 'Load', 'Marker': m,
                                           'Pad': [m * 40] * 10}])
        errors = []
        with w.Server(files.args('--workers', '8'), env=ENV) as srv:
            def client(c):
                try:
                    with w.Connection(srv.port, timeout=30) as conn:
                        for k in range(per_conn):
                            body = bodies['m%02d-%02d' % (c, k)]
                            r = conn.request('POST', WEBHOOK, body, [
                                ('Content-Type', w.JSON_TYPE),
                                ('ms-signature', w.sign(SECRET, body))])
                            if r.status != 200:
                                errors.append(r)
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
            w.in_threads(client, [(c,) for c in range(conns)])
            self.assertEqual(errors, [])
            # Done in the inbox means the line is written (and synced):
            # once all 200 are done, read the file once, no more waiting.
            deadline = time.monotonic() + w.slow(20)
            while True:
                done = files.query("SELECT count(*) FROM notifications "
                                   "WHERE state = 'done'")[0][0]
                if done == len(bodies):
                    break
                self.assertLess(time.monotonic(), deadline,
                                '%d of %d done' % (done, len(bodies)))
                time.sleep(0.02)
            lines = read_lines(files.path)
            self.assertEqual(len(lines), len(bodies))
            seen = {}
            for raw, obj in lines:
                m = obj['notification']['Marker']
                self.assertEqual(obj['notification']['Pad'], [m * 40] * 10)
                self.assertTrue(obj['delivery_id'].startswith(m))
                # the delivery Id, the Marker and the ten Pads
                self.assertEqual(raw.count(m.encode()), 402)
                seen[m] = seen.get(m, 0) + 1
            self.assertEqual(seen, {m: 1 for m in bodies})


class Rotation(unittest.TestCase):

    def test_mv_send_sighup_send(self):
        files = Files()
        self.addCleanup(files.cleanup)
        moved = files.path + '.1'
        with w.Server(files.args(), env=ENV) as srv:
            first = [w.delivery(notifications=[{'Action': 'before%d' % i}])
                     for i in range(3)]
            for body in first:
                self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            wait_lines(files.path, 3)
            os.rename(files.path, moved)
            # Still written to the moved file until SIGHUP.
            late = w.delivery(notifications=[{'Action': 'late'}])
            self.assertEqual(w.post(srv.port, late, SECRET).status, 200)
            wait_lines(moved, 4)
            self.assertFalse(os.path.exists(files.path))
            mark = srv.mark()
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r'SIGHUP: reopening files', since=mark)
            srv.wait_log(r'handler jsonl: reopened ' + re.escape(files.path),
                         since=mark)
            self.assertTrue(os.path.exists(files.path))
            second = [w.delivery(notifications=[{'Action': 'after%d' % i}])
                      for i in range(2)]
            for body in second:
                self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            new = wait_lines(files.path, 2)
            self.assertTrue(srv.running())
        self.assertEqual(sorted(obj['action'] for _, obj in new),
                         ['after0', 'after1'])
        old = read_lines(moved)
        self.assertEqual(sorted(obj['action'] for _, obj in old),
                         ['before0', 'before1', 'before2', 'late'])
        self.assertEqual(os.stat(files.path).st_mode & 0o777 & ~0o022,
                         0o640 & ~0o022)

    def test_reopen_failure_keeps_old_file(self):
        files = Files()
        self.addCleanup(files.cleanup)
        sub = os.path.join(files.tmp.name, 'sub')
        os.mkdir(sub)
        path = os.path.join(sub, 'events.jsonl')
        with w.Server(files.args(path=path), env=ENV) as srv:
            moved = os.path.join(files.tmp.name, 'moved.jsonl')
            os.rename(path, moved)
            os.rmdir(sub)       # PATH cannot be created again
            mark = srv.mark()
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r'handler jsonl: cannot reopen ' + re.escape(path)
                         + r'; still writing to the file open before: '
                           r'No such file or directory', since=mark)
            body = w.delivery(notifications=[{'Action': 'kept'}])
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            (_, obj), = wait_lines(moved, 1)
            self.assertEqual(obj['action'], 'kept')


def open_files(pid):
    """The paths that process @pid has open."""
    out = []
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            out.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            pass        # closed meanwhile
    return out


def wait_closed(pid, path, timeout=5):
    """Poll until process @pid no longer has @path open."""
    deadline = time.monotonic() + w.slow(timeout)
    while path in open_files(pid):
        if time.monotonic() > deadline:
            raise AssertionError('%s still open after %.1f s'
                                 % (path, w.slow(timeout)))
        time.sleep(0.01)


def attach_strace(test, pid, *args):
    """strace ARGS attached to @pid (all its threads), or skip @test
    where it cannot be."""
    if shutil.which('strace') is None:
        test.skipTest('no strace')
    st = subprocess.Popen(['strace', '-f', *args, '-p', str(pid)],
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = st.stderr.readline().decode('utf-8', 'replace')
    if 'attached' not in first:
        st.terminate()
        st.wait(timeout=10)
        st.stderr.close()
        test.skipTest('strace cannot attach: ' + first.strip())
    return st


def detach_strace(st):
    st.terminate()
    st.wait(timeout=10)
    st.stderr.close()


class RotationInBackground(unittest.TestCase):
    """SIGHUP runs on the event loop, which must not wait for a sync: the
    moved file is synced and closed by a thread of the handler's own."""

    def test_moved_file_closed_without_more_lines(self):
        files = Files()
        self.addCleanup(files.cleanup)
        moved = files.path + '.1'
        with w.Server(files.args(), env=ENV) as srv:
            for i in range(2):
                body = w.delivery(notifications=[{'Action': 'b%d' % i}])
                self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            wait_lines(files.path, 2)
            os.rename(files.path, moved)
            self.assertIn(moved, open_files(srv.pid))
            mark = srv.mark()
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r'handler jsonl: reopened ' + re.escape(files.path),
                         since=mark)
            # No notification comes: the moved file is closed anyway.
            wait_closed(srv.pid, moved)
            self.assertIn(files.path, open_files(srv.pid))
            body = w.delivery(notifications=[{'Action': 'after'}])
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            (_, obj), = wait_lines(files.path, 1)
            self.assertEqual(obj['action'], 'after')
        self.assertEqual(sorted(obj['action'] for _, obj in
                                read_lines(moved)), ['b0', 'b1'])

    def test_two_rotations_in_a_row(self):
        files = Files()
        self.addCleanup(files.cleanup)
        moved = [files.path + '.1', files.path + '.2']
        with w.Server(files.args(), env=ENV) as srv:
            for k, name in enumerate(moved):
                body = w.delivery(notifications=[{'Action': 'f%d' % k}])
                self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
                wait_lines(files.path, 1)
                os.rename(files.path, name)
                mark = srv.mark()
                srv.send_signal(signal.SIGHUP)
                srv.wait_log(r'handler jsonl: reopened', since=mark)
            for name in moved:
                wait_closed(srv.pid, name)
            body = w.delivery(notifications=[{'Action': 'f2'}])
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            wait_lines(files.path, 1)
        self.assertEqual([[obj['action'] for _, obj in read_lines(name)]
                          for name in moved + [files.path]],
                         [['f0'], ['f1'], ['f2']])

    def test_sighup_during_a_slow_sync_keeps_serving(self):
        # strace delays every fdatasync of the file by DELAY: a line's
        # handler is inside one when SIGHUP comes. The event loop must
        # reopen and answer /healthz meanwhile, not after the sync.
        delay = 4.0 if w.wrapped() else 1.5
        files = Files()
        self.addCleanup(files.cleanup)
        moved = files.path + '.1'
        with w.Server(files.args(), env=ENV) as srv:
            st = attach_strace(
                self, srv.pid, '-o', os.devnull, '-P', files.path,
                '-e', 'trace=fdatasync',
                '-e', 'inject=fdatasync:delay_enter=%d' % (delay * 1e6))
            try:
                body = w.delivery(notifications=[{'Action': 'slow'}])
                self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
                wait_lines(files.path, 1)   # written; now syncing
                time.sleep(0.1)
                os.rename(files.path, moved)
                mark = srv.mark()
                start = time.monotonic()
                srv.send_signal(signal.SIGHUP)
                srv.wait_log(r'handler jsonl: reopened ' +
                             re.escape(files.path), since=mark)
                self.assertEqual(w.get(srv.port, '/healthz').status, 200)
                took = time.monotonic() - start
                state = files.query('SELECT state FROM notifications')
            finally:
                detach_strace(st)
            self.assertLess(took, delay / 2)
            # The sync was still running: its line was not done yet.
            self.assertEqual(len(state), 1)
            self.assertNotEqual(state[0][0], 'done')
            deadline = time.monotonic() + w.slow(10)
            while files.query('SELECT state FROM notifications') != \
                    [('done',)]:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            wait_closed(srv.pid, moved)
            after = w.delivery(notifications=[{'Action': 'after'}])
            self.assertEqual(w.post(srv.port, after, SECRET).status, 200)
            (_, obj), = wait_lines(files.path, 1)
            self.assertEqual(obj['action'], 'after')
        (_, obj), = read_lines(moved)
        self.assertEqual(obj['action'], 'slow')


class Stdout(unittest.TestCase):

    def test_dash_writes_standard_output(self):
        files = Files()
        self.addCleanup(files.cleanup)
        body = w.delivery(notifications=[{'Action': 'one'},
                                         {'Action': 'two'}])
        with w.Server(files.args(path='-'), env=ENV) as srv:
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            lines = wait_lines(srv.out_path, 2)
            # Standard output is not reopened.
            mark = srv.mark()
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r'SIGHUP: nothing to reopen', since=mark)
            self.assertFalse(os.path.exists(os.path.join(srv.tmp.name,
                                                         '-')))
        self.assertEqual([(obj['action'], obj['index'], obj['count'])
                          for _, obj in lines],
                         [('one', 0, 2), ('two', 1, 2)])


def preloaded(lib):
    """LD_PRELOAD for @lib in the whr under test: after the sanitizer's
    runtime when whr has one, which must come first."""
    out = subprocess.run(['ldd', os.environ['WHR_BIN']], check=True,
                         capture_output=True, text=True).stdout
    first = [line.split('=>')[1].split('(')[0].strip()
             for line in out.splitlines()
             if 'libasan' in line and '=>' in line]
    return ':'.join(first + [lib])


class WriteErrors(unittest.TestCase):

    def test_a_failed_sync_fails_the_lines_written_during_it(self):
        # The kernel reports a lost writeback once: a line written to the
        # file while the failing sync ran may share the pages it lost,
        # and the next sync would pass. Its notification must be retried
        # with the first one, never reported done.
        files = Files()
        self.addCleanup(files.cleanup)
        delay = w.slow(1.5)
        env = dict(ENV, LD_PRELOAD=preloaded(
                       os.environ['WHR_TEST_FAIL_FDATASYNC']),
                   WHR_FAIL_FDATASYNC_PATH='events.jsonl',
                   # 1: the check at start that syncing works; 2: the
                   # first line's sync.
                   WHR_FAIL_FDATASYNC_CALL='2',
                   WHR_FAIL_FDATASYNC_DELAY_MS=str(int(delay * 1000)))
        # Two workers, whatever the CPUs: the second line is written
        # while the first one's worker waits for its sync.
        with w.Server(files.args('--retry-delay', '60s', '--workers', '2'),
                      env=env) as srv:
            for i in range(2):
                body = w.delivery(id='%032x' % (i + 1), notifications=[
                    {'Action': 'line%d' % (i + 1)}])
                self.assertEqual(w.post(srv.port, body, SECRET).status,
                                 200)
                # The second goes while the first one's sync runs.
                deadline = time.monotonic() + delay / 2
                while len(read_lines(files.path)) < i + 1:
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.01)
            deadline = time.monotonic() + w.slow(10)
            while True:
                rows = files.query('SELECT n.action, n.state, o.reason '
                                   'FROM notifications n JOIN outcomes o '
                                   'ON o.notification_id = n.id '
                                   'ORDER BY n.id')
                if len(rows) == 2:
                    break
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
        failed = 'jsonl: cannot sync %s: Input/output error' % files.path
        self.assertEqual(rows, [('line1', 'retrying', failed),
                                ('line2', 'retrying', failed)])

    def test_full_device_retries_with_reason(self):
        files = Files()
        self.addCleanup(files.cleanup)
        with w.Server(files.args('--retry-delay', '60s', path='/dev/full'),
                      env=ENV) as srv:
            body = w.delivery(notifications=[{'Action': 'full'}])
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            deadline = time.monotonic() + w.slow(10)
            while True:
                rows = files.query('SELECT n.state, o.result, o.reason FROM '
                                   'notifications n JOIN outcomes o ON '
                                   'o.notification_id = n.id')
                if rows:
                    break
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
        self.assertEqual(rows, [('retrying', 'retry',
                                 'jsonl: cannot write to /dev/full: '
                                 'No space left on device')])

    def test_short_write_leaves_no_partial_line(self):
        # A file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes the
        # second line's write(2) short, then fail with EFBIG: the part
        # written must be cut off again.
        files = Files()
        self.addCleanup(files.cleanup)
        body = w.delivery(notifications=[
            {'Action': 'fits', 'Pad': 'a' * 100},
            {'Action': 'too-long', 'Pad': 'b' * 1000}])
        # SQLite's files are bound by the limit too: give them room by
        # starting the jsonl file just under a large limit.
        with open(files.path, 'wb') as f:
            f.write(json.dumps({'filler': 'x' * (8 << 20)}).encode()
                    + b'\n')
        size0 = os.path.getsize(files.path)
        limit = size0 + 600
        real_command = whrtest.server.command
        limiter = ('import os, resource, signal, sys; '
                   'signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '
                   'resource.setrlimit(resource.RLIMIT_FSIZE, (%d, %d)); '
                   'os.execvp(sys.argv[1], sys.argv[1:])' % (limit, limit))

        def limited(program, args):
            return [sys.executable, '-c', limiter,
                    *real_command(program, args)]
        with mock.patch.object(whrtest.server, 'command', limited):
            srv = w.Server(files.args('--retry-delay', '60s'), env=ENV)
        with srv:
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            deadline = time.monotonic() + w.slow(10)
            while True:
                rows = dict(files.query(
                    'SELECT n.idx, o.reason FROM notifications n JOIN '
                    'outcomes o ON o.notification_id = n.id'))
                if len(rows) == 2:
                    break
                self.assertLess(time.monotonic(), deadline, rows)
                time.sleep(0.02)
            lines = read_lines(files.path)
        self.assertEqual(rows[0], None)
        self.assertEqual(rows[1], 'jsonl: cannot write to %s: File too '
                                  'large' % files.path)
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[1][1]['action'], 'fits')
        self.assertEqual(os.path.getsize(files.path),
                         size0 + len(lines[1][0]) + 1)


class StartErrors(unittest.TestCase):

    def refused(self, *args):
        return w.serve_refused('--no-enrollments', *args, env=ENV)

    def test_missing_directory(self):
        path = '/nonexistent-whr-dir/sub/events.jsonl'
        err = self.refused('--handler', 'jsonl:' + path)
        self.assertIn('handler jsonl: cannot open %s: No such file or '
                      'directory' % path, err)
        self.assertNotIn('ready', err)

    def test_no_path(self):
        for spec in ('jsonl', 'jsonl:'):
            with self.subTest(spec=spec):
                err = self.refused('--handler', spec)
                self.assertIn('handler jsonl needs a file: --handler '
                              'jsonl:PATH (jsonl:- for standard output)', err)

    def test_same_file_twice(self):
        with tempfile.TemporaryDirectory(prefix='whr-jsonl-') as tmp:
            path = os.path.join(tmp, 'a.jsonl')
            err = self.refused(
                '--handler', 'jsonl:' + path,
                '--handler', 'jsonl:' + os.path.join(tmp, '.', 'a.jsonl'))
            self.assertIn('handler jsonl: %s/./a.jsonl is given twice'
                          % tmp, err)

    def test_two_files(self):
        files = Files()
        self.addCleanup(files.cleanup)
        other = os.path.join(files.tmp.name, 'other.jsonl')
        with w.Server(files.args('--handler', 'jsonl:' + other),
                      env=ENV) as srv:
            body = w.delivery(notifications=[{'Action': 'both'}])
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            (_, a), = wait_lines(files.path, 1)
            (_, b), = wait_lines(other, 1)
        self.assertEqual(a, b)


class Hangup(unittest.TestCase):

    def test_sighup_without_jsonl_keeps_serving(self):
        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=ENV) as srv:
            for _ in range(2):
                mark = srv.mark()
                srv.send_signal(signal.SIGHUP)
                srv.wait_log(r'(?m)^.*info.*SIGHUP: nothing to reopen',
                             since=mark)
                body = w.delivery()
                self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
                self.assertTrue(srv.running())
            text = srv.stop()
        self.assertEqual(re.findall(r'\S+: shutting down', text),
                         ['SIGTERM: shutting down'])


class Sync(unittest.TestCase):
    """The lines are synced, seen with strace attached to the server."""

    def test_lines_are_synced(self):
        if shutil.which('strace') is None:
            self.skipTest('no strace')
        files = Files()
        self.addCleanup(files.cleanup)
        trace = os.path.join(files.tmp.name, 'strace.txt')
        with w.Server(files.args(), env=ENV) as srv:
            st = subprocess.Popen(['strace', '-f', '-y', '-e',
                                   'trace=fdatasync,fsync', '-o', trace,
                                   '-p', str(srv.pid)],
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
            try:
                first = st.stderr.readline().decode('utf-8', 'replace')
                if 'attached' not in first:
                    self.skipTest('strace cannot attach: ' + first.strip())
                bodies = [w.delivery(notifications=[{'Action': 's%d' % i}])
                          for i in range(20)]
                w.in_threads(w.post, [(srv.port, body, SECRET)
                                      for body in bodies])
                lines = wait_lines(files.path, len(bodies))
            finally:
                st.terminate()
                st.wait(timeout=10)
                st.stderr.close()
        self.assertEqual(len(lines), len(bodies))
        with open(trace) as f:
            calls = [l for l in f if re.search(
                r'fdatasync\(\d+</.*/events\.jsonl>', l)]
        # At least one sync of the file, and never more than one a line
        # (concurrent lines share one).
        self.assertGreaterEqual(len(calls), 1)
        self.assertLessEqual(len(calls), len(bodies))


# Runs ARGV[2:] (exec, same pid) traced by strace into ARGV[1] from
# its first instruction, so that start-up is seen too.
STRACE_SELF = r"""
import os, re, subprocess, sys, time
st = subprocess.Popen(['strace', '-f', '-qq', '-y', '-o', sys.argv[1],
                       '-e', 'trace=openat,fsync', '-p', str(os.getpid())],
                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 10
while True:
    with open('/proc/self/status') as f:
        if re.search(r'^TracerPid:\s*[1-9]', f.read(), re.M):
            break
    if st.poll() is not None or time.monotonic() > deadline:
        sys.exit('strace cannot attach')
    time.sleep(0.01)
time.sleep(0.1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def stop_tracer(pid):
    """Detach the strace of STRACE_SELF from @pid before it exits (the
    leak checker of a sanitizer build cannot work under ptrace)."""
    def tracer():
        with open('/proc/%d/status' % pid) as f:
            return int(re.search(r'^TracerPid:\s*(\d+)', f.read(),
                                 re.M).group(1))
    tracer_pid = tracer()
    if tracer_pid == 0:
        return
    os.kill(tracer_pid, signal.SIGTERM)
    deadline = time.monotonic() + w.slow(5)
    while tracer() != 0:
        if time.monotonic() > deadline:
            raise AssertionError('strace did not detach')
        time.sleep(0.01)


class DirectorySync(unittest.TestCase):
    """When whr creates the file, it syncs the directory, so that a power
    cut cannot lose the file with lines already reported done."""

    def test_directory_synced_after_create(self):
        if shutil.which('strace') is None:
            self.skipTest('no strace')
        files = Files()
        self.addCleanup(files.cleanup)
        logs = os.path.join(os.path.realpath(files.tmp.name), 'logs')
        os.mkdir(logs)
        path = os.path.join(logs, 'events.jsonl')
        trace = os.path.join(files.tmp.name, 'strace.txt')
        create = re.compile(r'openat\(.*"%s", [A-Z_|]*\|O_EXCL\|[A-Z_|]*, '
                            r'0640\) = \d+<' % re.escape(path))
        dir_sync = re.compile(r'fsync\(\d+<%s>\) = 0' % re.escape(logs))
        real_command = whrtest.server.command

        def traced(program, args):
            return [sys.executable, '-c', STRACE_SELF, trace,
                    *real_command(program, args)]

        def calls(count):
            """The trace's lines that create PATH or sync its directory,
            once there are @count of them."""
            deadline = time.monotonic() + w.slow(5)
            while True:
                with open(trace) as f:
                    found = [('create' if create.search(l) else 'sync')
                             for l in f
                             if create.search(l) or dir_sync.search(l)]
                if len(found) >= count:
                    return found
                self.assertLess(time.monotonic(), deadline, found)
                time.sleep(0.01)

        with mock.patch.object(whrtest.server, 'command', traced):
            try:
                srv = w.Server(files.args(path=path), env=ENV)
            except w.ServerError as e:
                if 'strace cannot attach' in str(e):
                    self.skipTest('strace cannot attach')
                raise
        with srv:
            self.assertEqual(calls(2), ['create', 'sync'])
            # SIGHUP after mv: PATH is created again, and synced at once.
            os.rename(path, path + '.1')
            mark = srv.mark()
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r'handler jsonl: reopened', since=mark)
            self.assertEqual(calls(4), ['create', 'sync'] * 2)
            # PATH made by logrotate's "create": nothing to sync.
            os.rename(path, path + '.2')
            open(path, 'wb').close()
            mark = srv.mark()
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r'handler jsonl: reopened', since=mark)
            wait_closed(srv.pid, path + '.2')
            body = w.delivery(notifications=[{'Action': 'kept'}])
            self.assertEqual(w.post(srv.port, body, SECRET).status, 200)
            (_, obj), = wait_lines(path, 1)
            self.assertEqual(calls(4), ['create', 'sync'] * 2)
            stop_tracer(srv.pid)
        self.assertEqual(obj['action'], 'kept')


if __name__ == '__main__':
    w.main()
