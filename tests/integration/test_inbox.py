"""The durable inbox seen from outside: duplicates, retries, dead work and
replay, retention, ordering, the exactly-once facility and the work window,
against the real server (the recorder program) and the real SQLite file.
The `whr inbox` tool is in test_inbox_tool.py."""

import json
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

S_TENANT = w.secret('inbox-tenant')
ENV = {'MS_WebHookReceiverSecret_Custom':
       '%s, tenant=%s' % (V1_SECRET, S_TENANT)}


def enrollment(course, *users, action='CourseEnrollment', n=0):
    return {'Action': action, 'n': n, 'Course': {'Id': course},
            'Users': [{'Id': u} for u in users]}


class DataDir:
    """A data folder that outlives one server, for restarts."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-inbox-')
        self.path = os.path.join(self.tmp.name, 'data')
        self.record = os.path.join(self.tmp.name, 'record.txt')

    @classmethod
    def for_test(cls, test):
        """A new one, removed when @test ends."""
        data = cls()
        test.addCleanup(data.cleanup)
        return data

    def args(self, *more):
        return ['--data-dir', self.path, *more]

    def env(self, **more):
        return dict(ENV, WHR_RECORD=self.record, **more)

    def recorder(self, *args, env=None):
        """The recorder on this folder, with @args and @env (env() when
        not given): not yet stopped, a context manager."""
        return w.Server(self.args(*args), program='recorder',
                        env=env if env is not None else self.env())

    def query(self, sql, *args):
        return w.inbox_query(self.path, sql, *args)

    def inbox(self, *args, expect=0):
        rc, out, err = w.run_whr(['inbox', '--data-dir', self.path, *args])
        if rc != expect:
            raise AssertionError('whr inbox %s: exit %d, expected %d\n%s%s'
                                 % (' '.join(args), rc, expect, out, err))
        return out, err

    def wait_states(self, done=None, dead=None, timeout=10):
        """Wait until every notification is done or dead, and the counts
        are as given."""
        deadline = time.monotonic() + w.slow(timeout)
        while True:
            rows = dict(self.query('SELECT state, count(*) FROM '
                                   'notifications GROUP BY state'))
            open_ = rows.get('pending', 0) + rows.get('retrying', 0)
            if (open_ == 0 and (done is None or rows.get('done', 0) == done)
                    and (dead is None or rows.get('dead', 0) == dead)):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError('states %r after %.1f s' %
                                     (rows, w.slow(timeout)))
            time.sleep(0.02)

    def cleanup(self):
        self.tmp.cleanup()


def calls(records):
    return [(r.handler, r.delivery, int(r.index)) for r in records
            if r.handler != 'destroy']


class DataDirTestCase(unittest.TestCase):
    """A test with a DataDir of its own (self.data), removed after it."""

    def setUp(self):
        self.data = DataDir.for_test(self)


class Duplicates(DataDirTestCase):
    def test_resend_is_acknowledged_and_not_handled_again(self):
        # vectors/README.md: v2 is v1 sent again (same Id, Attempt 2).
        with self.data.recorder() as srv:
            mark = srv.mark()
            r = w.post(srv.port, w.vector('v1'), signature=w.V1_SIGNATURE)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(srv.records(3)), 3)
            r = w.post(srv.port, w.vector('v2'), signature=w.V2_SIGNATURE)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b'')
            line = srv.request_line(mark,
                                    pattern=r'request method=POST.*attempt=2')
            self.assertIn('duplicate=true', line)
            # The same Id for another receiver id is another delivery.
            r = w.post(srv.port, w.vector('v1'), S_TENANT,
                       path=WEBHOOK + '/TENANT')
            self.assertEqual(r.status, 200, r)
            recs = srv.records(6)
        self.assertEqual([(r.handler, r.attempt, r.receiver) for r in recs], [
            ('enroll', '1', ''), ('all', '1', ''), ('all2', '1', ''),
            ('enroll', '1', 'tenant'), ('all', '1', 'tenant'),
            ('all2', '1', 'tenant')])
        rows = self.data.query('SELECT receiver_id, delivery_id, attempt, '
                               'duplicates, last_attempt FROM deliveries '
                               'ORDER BY seq')
        self.assertEqual(rows, [
            ('', '5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071', 1, 1, 2),
            ('tenant', '5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071', 1, 0, None)])

    def test_same_delivery_at_once_on_many_connections(self):
        body = w.delivery(notifications=[{'Action': 'a1'}])
        with self.data.recorder() as srv:
            conns = [w.Connection(srv.port) for _ in range(32)]
            request = w.build_request(
                'POST', WEBHOOK, body,
                [('Content-Type', w.JSON_TYPE),
                 ('ms-signature', w.sign(V1_SECRET, body))])
            barrier = threading.Barrier(len(conns))
            statuses = []

            def send(c):
                barrier.wait()
                c.send(request)
                statuses.append(c.read_response('POST').status)

            w.in_threads(send, [(c,) for c in conns])
            for c in conns:
                c.close()
            self.assertEqual(statuses, [200] * len(conns))
            self.assertEqual(len(srv.records(3)), 3)
        self.assertEqual(self.data.query(
            'SELECT count(*), sum(duplicates) FROM deliveries'),
            [(1, len(conns) - 1)])

    def test_survives_a_restart(self):
        body = w.delivery(notifications=[{'Action': 'a1'}])
        with self.data.recorder() as srv:
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            srv.records(3)
        with self.data.recorder() as srv:
            mark = srv.mark()
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.assertIn('duplicate=true', srv.request_line(mark))
            self.assertEqual(len(calls(srv.records(3))), 3)

    def test_deliveries_without_id_are_all_kept(self):
        body = w.delivery(id=None, notifications=[{'Action': 'a1'}])
        with self.data.recorder() as srv:
            for _ in range(2):
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            self.assertEqual(len(srv.records(6)), 6)


class RetriesAndDeadWork(DataDirTestCase):
    def test_retries_are_recorded(self):
        env = self.data.env(WHR_RECORD_RETRIES='2')
        with self.data.recorder('--retry-delay', '20ms', env=env) as srv:
            body = w.delivery(id='ab' * 16,
                              notifications=[{'Action': 'RetryMe'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.data.wait_states(done=1)
            out, _ = self.data.inbox('--format', 'json', 'show', 'ab' * 16)
        shown = json.loads(out)
        note, = shown['notifications']
        self.assertEqual(note['state'], 'done')
        self.assertEqual(note['runs'], 3)
        outcomes = {o['handler']: (o['result'], o['runs'])
                    for o in note['outcomes']}
        self.assertEqual(outcomes, {'retry': ('done', 3),
                                    'all': ('done', 1),
                                    'all2': ('done', 1)})

    def test_retries_run_out(self):
        with self.data.recorder('--retry-delay', '20ms',
                                '--retry-max-age', '200ms') as srv:
            body = w.delivery(id='cd' * 16,
                              notifications=[{'Action': 'RetryMe'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.data.wait_states(dead=1)
            srv.wait_log(r'notification is dead .*retries ran out')
        (error,), = self.data.query('SELECT error FROM notifications')
        self.assertRegex(error, r'^retries ran out .*retry: recorder asks')

    def test_dead_then_replayed(self):
        with self.data.recorder() as srv:
            body = w.delivery(id='ef' * 16, notifications=[
                {'Action': 'a1'}, {'Action': 'RejectMe'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.data.wait_states(done=1, dead=1)
            out, _ = self.data.inbox('list', '--state', 'dead')
            self.assertIn('RejectMe', out)
            self.assertIn('reject: recorder rejects delivery', out)
            self.assertNotIn('a1 ', out.split('\n', 1)[1])
            before = len(srv.records(6))
            # Only the handler that did not finish runs again.
            out, _ = self.data.inbox('replay', 'ef' * 16)
            self.assertIn('replayed 1 notification', out)
            recs = srv.records(before + 1)
            self.assertEqual(calls(recs[before:]), [('reject', 'ef' * 16, 1)])
            self.data.wait_states(done=1, dead=1)
            # --dead: every dead one; --all-handlers: all of them.
            self.data.inbox('replay', '--dead', '--action', 'rejectme')
            recs = srv.records(before + 2)
            self.assertEqual(calls(recs[before + 1:]),
                             [('reject', 'ef' * 16, 1)])
            self.data.wait_states(done=1, dead=1)
            self.data.inbox('replay', 'ef' * 16, '--all-handlers')
            recs = srv.records(before + 8)
            self.assertEqual(sorted(calls(recs[before + 2:])), sorted([
                ('a1', 'ef' * 16, 0), ('all', 'ef' * 16, 0),
                ('all2', 'ef' * 16, 0), ('reject', 'ef' * 16, 1),
                ('all', 'ef' * 16, 1), ('all2', 'ef' * 16, 1)]))

    def test_work_taken_but_not_finished_runs_again(self):
        # kill -9 while a handler is in the middle of a notification.
        env = self.data.env(WHR_RECORD_SLEEP_MS='3000')
        body = w.delivery(id='99' * 16, notifications=[{'Action': 'a1'}])
        srv = self.data.recorder(env=env)
        try:
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            srv.records(2)          # a1, then "all" sleeps
            srv.kill()
        finally:
            srv.cleanup()
        with self.data.recorder() as srv:
            self.data.wait_states(done=1)
            recs = srv.records(5)
        # a1 ran twice (its outcome was not written), then all, all2.
        self.assertEqual([r.handler for r in recs],
                         ['a1', 'all', 'a1', 'all', 'all2'])

    def test_handler_timeout_is_reported(self):
        env = self.data.env(WHR_RECORD_SLEEP_MS='1500')
        with self.data.recorder('--handler-timeout', '200ms', env=env) as srv:
            body = w.delivery(notifications=[{'Action': 'a1'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            srv.wait_log(r'warn +handler all has been running for \d+ s on '
                         r'notification 1 \(handler-timeout 200 ms\)')
            self.data.wait_states(done=1)


class Ordering(DataDirTestCase):
    def test_one_learner_and_course_in_order_under_parallel_workers(self):
        # 4 workers, handlers that take a while: the notifications about
        # one learner in one course come out in arrival order, one at a
        # time; other learners' go on in parallel.
        env = self.data.env(WHR_RECORD_SLEEP_MS='20')
        bodies = []
        for i in range(12):
            notes = [enrollment('course-1', 'ana', n=i),
                     enrollment('course-1', 'bo', n=i),
                     enrollment('course-2', 'ana', 'bo', n=i)]
            bodies.append(w.delivery(id='%032x' % (i + 1),
                                     notifications=notes))
        with self.data.recorder('--workers', '4', env=env) as srv:
            start = time.monotonic()
            for body in bodies:
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            recs = srv.records(12 * 3 * 3, timeout=30)
            elapsed = time.monotonic() - start
        by_key = {}
        for rec in recs:
            d, i = int(rec.delivery, 16), int(rec.index)
            key = {0: 'c1-ana', 1: 'c1-bo', 2: 'c2'}[i]
            by_key.setdefault(key, []).append((d, rec.handler))
        for key, seq in by_key.items():
            with self.subTest(key=key):
                # Each notification's 3 handlers together, deliveries in
                # order: no overlap, no reordering.
                self.assertEqual(seq, [(d, h) for d in range(1, 13)
                                       for h in ('enroll', 'all', 'all2')])
        # 36 notifications of 20 ms each one after the other would take
        # 0.72 s; three independent keys overlap.
        self.assertLess(elapsed, w.timing_bound(0.72))

    def test_other_events_in_order_within_their_delivery(self):
        env = self.data.env(WHR_RECORD_SLEEP_MS='10')
        notes = [{'Action': 'CoursePublished', 'Id': 'c', 'n': i}
                 for i in range(6)]
        with self.data.recorder('--workers', '4', env=env) as srv:
            body = w.delivery(notifications=notes)
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            recs = srv.records(12)
        self.assertEqual([(r.handler, int(r.index)) for r in recs],
                         [(h, i) for i in range(6) for h in ('all', 'all2')])


class Retention(unittest.TestCase):
    def test_finished_deliveries_are_purged(self):
        data = DataDir.for_test(self)
        with data.recorder('--retain', '1s') as srv:
            body = w.delivery(notifications=[{'Action': 'a1'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            data.wait_states(done=1)
            deadline = time.monotonic() + w.slow(10)
            while data.query('SELECT count(*) FROM deliveries') != [(0,)]:
                self.assertLess(time.monotonic(), deadline, 'not purged')
                time.sleep(0.1)
            self.assertEqual(data.query('SELECT count(*) FROM outcomes'),
                             [(0,)])


class WorkWindow(DataDirTestCase):
    """--work-window: at most that many open notifications in memory; the
    rest wait in the store and come in, in arrival order, as it empties.
    whr serve with two handlers: an exec command that waits until a file
    (the release) exists, then jsonl, which records what ran, in order."""

    PAD = 'x' * 10000           # ~10 KB a notification

    def setUp(self):
        super().setUp()
        self.release = os.path.join(self.data.tmp.name, 'release')
        self.jsonl = os.path.join(self.data.tmp.name, 'seen.jsonl')
        # Whatever happens, no command is left waiting (a killed server
        # leaves its commands running): release them before the folder
        # goes.
        self.addCleanup(self.let_go)

    def let_go(self):
        open(self.release, 'w').close()
        time.sleep(0.05)

    def server(self, *more, window='100'):
        # No shell expansion in exec's words: sh gets the path as $0.
        wait = ("exec:*=sh -c 'while [ ! -e \"$0\" ]; do sleep 0.01; done' "
                + self.release)
        return w.Server(self.data.args(
            '--no-enrollments', '--work-window', window, '--workers', '4',
            '--exec-max-running', '4', '--handler', wait,
            '--handler', 'jsonl:' + self.jsonl, *more), env=ENV)

    def bodies(self, first, count, prefix='e'):
        """One notification each; every 4th about the same learner and
        course (one ordering key), the others about learners of their
        own."""
        out = []
        for i in range(first, first + count):
            user = 'ana' if i % 4 == 0 else 'user-%d' % i
            note = dict(enrollment('course-1', user, n=i), Pad=self.PAD)
            out.append(w.delivery(id='%s%031x' % (prefix, i),
                                  notifications=[note]))
        return out

    def send_all(self, port, bodies, connections=4):
        """Send on a few kept-alive connections at once; every answer
        must be 200."""
        statuses = []
        lock = threading.Lock()

        def send(part):
            with w.Connection(port, timeout=w.slow(10)) as c:
                for body in part:
                    c.send(w.build_request(
                        'POST', WEBHOOK, body,
                        [('Content-Type', w.JSON_TYPE),
                         ('ms-signature', w.sign(V1_SECRET, body))]))
                    status = c.read_response('POST').status
                    with lock:
                        statuses.append(status)

        w.in_threads(send, [(bodies[k::connections],)
                            for k in range(connections)])
        self.assertEqual(statuses, [200] * len(bodies))

    def seen(self):
        """The delivery ids jsonl recorded, in the order it ran them; None
        while a line is still being written (a reader may see the end of
        the file grow before all of a write's bytes)."""
        if not os.path.exists(self.jsonl):
            return []
        with open(self.jsonl, 'rb') as f:
            lines = f.read().split(b'\n')[:-1]
        try:
            return [json.loads(line)['delivery_id'] for line in lines]
        except ValueError:
            return None

    def wait_seen(self, count, timeout=10):
        deadline = time.monotonic() + w.slow(timeout)
        settled = 0
        while True:
            seen = self.seen()
            if seen is not None and len(seen) >= count:
                # A moment more, so that an extra call shows up too.
                settled += 1
                if settled == 2:
                    return seen
                time.sleep(0.05)
                continue
            if time.monotonic() > deadline:
                raise AssertionError('%s of %d notifications handled'
                                     % (len(seen) if seen else seen, count))
            time.sleep(0.02)

    def check_key_order(self, seen):
        """The notifications of the shared key ran in arrival (id)
        order, each once."""
        ids = dict(self.data.query(
            'SELECT d.delivery_id, n.id FROM notifications n'
            ' JOIN deliveries d ON d.seq = n.delivery_seq'))
        ana = [ids[d] for d in seen
               if int(d[1:], 16) % 4 == 0]
        self.assertTrue(ana)
        self.assertEqual(ana, sorted(ana))
        self.assertEqual(len(ana), len(set(ana)))

    @staticmethod
    def rss_kib(pid):
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        raise AssertionError('no VmRSS for %d' % pid)

    @staticmethod
    def sanitized(pid):
        # AddressSanitizer keeps freed memory in quarantine: its RSS
        # says nothing about what whr holds.
        with open('/proc/%d/maps' % pid) as f:
            return 'asan' in f.read()

    def test_memory_stays_bounded_and_order_holds(self):
        total, first = (200, 20) if w.wrapped() else (1000, 100)
        with self.server() as srv:
            mark = srv.mark()
            self.send_all(srv.port, self.bodies(0, first))
            time.sleep(0.2)
            rss_first = self.rss_kib(srv.pid)
            self.send_all(srv.port, self.bodies(first, total - first))
            time.sleep(0.2)
            rss_all = self.rss_kib(srv.pid)
            srv.wait_log(r'warn +\d+ notifications wait on disk: the '
                         r'handlers are slower than deliveries', mark)
            # All stored, none lost, none handled yet.
            self.assertEqual(self.data.query(
                'SELECT count(*) FROM notifications'), [(total,)])
            self.assertEqual(self.seen(), [])
            if not w.wrapped() and not self.sanitized(srv.pid):
                # 900 notifications of 10 KB in memory would be 9 MB
                # more; they wait on disk instead.
                self.assertLess(rss_all - rss_first, 4 * 1024,
                                'RSS %d KiB after %d, %d KiB after %d'
                                % (rss_first, first, rss_all, total))
            self.assertNotRegex(srv.log(mark), 'caught up')
            open(self.release, 'w').close()
            seen = self.wait_seen(total, timeout=20)
            srv.wait_log(r'info +the inbox caught up', mark)
            self.data.wait_states(done=total)
        self.assertEqual(sorted(seen),
                         sorted('e%031x' % i for i in range(total)))
        self.check_key_order(seen)

    def test_restart_with_more_open_work_than_the_window(self):
        total = 150 if w.wrapped() else 400
        srv = self.server()
        try:
            self.send_all(srv.port, self.bodies(0, total))
            srv.wait_log(r'notifications wait on disk')
            srv.kill()
        finally:
            srv.cleanup()
        # The killed server's commands still wait: the release comes
        # once the new one has started (and nothing has run yet).
        with self.server() as srv:
            srv.wait_log(r'notification\(s\) to handle')
            self.assertRegex(srv.log(), r'warn +%d notifications wait on '
                             r'disk' % (total - 100))
            self.assertRegex(srv.log(), r'%d notification\(s\) to handle'
                             % total)
            self.assertEqual(self.seen(), [])
            open(self.release, 'w').close()
            seen = self.wait_seen(total, timeout=20)
            srv.wait_log(r'info +the inbox caught up')
            self.data.wait_states(done=total)
        self.assertEqual(sorted(seen),
                         sorted('e%031x' % i for i in range(total)))
        self.check_key_order(seen)

    def test_replay_while_behind(self):
        early, late = (3, 130) if w.wrapped() else (6, 250)
        open(self.release, 'w').close()
        with self.server() as srv:
            mark = srv.mark()
            self.send_all(srv.port, self.bodies(0, early))
            self.data.wait_states(done=early)
            os.unlink(self.release)
            self.send_all(srv.port, self.bodies(early, late))
            srv.wait_log(r'notifications wait on disk', mark)
            # The window is full of waiting work: the replayed ones are
            # found, and come in once there is room.
            for i in range(early):
                out, _ = self.data.inbox('replay', 'e%031x' % i,
                                         '--all-handlers')
                self.assertIn('replayed 1 notification', out)
            open(self.release, 'w').close()
            seen = self.wait_seen(2 * early + late, timeout=20)
            srv.wait_log(r'info +the inbox caught up', mark)
            self.data.wait_states(done=early + late)
        counts = {}
        for d in seen:
            counts[d] = counts.get(d, 0) + 1
        self.assertEqual(counts, dict(
            [('e%031x' % i, 2) for i in range(early)] +
            [('e%031x' % i, 1) for i in range(early, early + late)]))

    def test_bad_values(self):
        for value in ('99', '0', '10000001', '-100', '1e3', '', 'many'):
            with self.subTest(value=value):
                rc, out, err = w.run_whr(['serve', '--work-window', value,
                                          *self.data.args()], ENV)
                self.assertEqual(rc, 2, err)
                self.assertIn("--work-window: invalid value '%s': expected "
                              'a number from 100 to 10000000' % value, err)
        rc, out, err = w.run_whr(['serve', *self.data.args()],
                                 dict(ENV, WHR_WORK_WINDOW='50'))
        self.assertEqual(rc, 2, err)
        self.assertIn("WHR_WORK_WINDOW: invalid value '50': expected a "
                      'number from 100 to 10000000', err)


if __name__ == '__main__':
    unittest.main(verbosity=2)
