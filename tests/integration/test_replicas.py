"""Several whr replicas sharing one PostgreSQL (issue 15), each test on a
throwaway cluster (whrtest/postgres.py). Suite postgres: skipped without
PostgreSQL or nginx, except under CI=true.

- Replicas: three replicas behind real nginx, whose upstream is the one
  of deploy/nginx/whr-replicas-site.conf (its servers pointed at the
  replicas) around deploy/nginx/whr-locations.conf. 10,000 deliveries,
  each an event of the enrollment tracker, go through nginx as the
  sender sends them (again until a 200); a tenth are resent later; some
  reach two replicas directly at the same moment; one replica is killed
  with SIGKILL in the middle and started again. Afterwards every
  delivery is stored once and handled, the tracker's outcome of each is
  written once, its history has one row per event and learner, and
  `whr enrollments --format csv`, sorted, equals that of one whr on
  SQLite fed the same events.
- DatabaseAway: PostgreSQL stopped under load and started again: 503
  with Retry-After while it is away (never a 200), /readyz false saying
  why, nothing acknowledged lost, deliveries stored again within seconds
  of its return.

WHR_TEST_REPLICA_DELIVERIES sets the number of deliveries (10000).
"""

import os
import queue
import random
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET, postgres  # noqa: E402
from test_nginx import deploy_file, nginx_path  # noqa: E402
from toolstest import NginxProcess  # noqa: E402

SECRETS = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
DELIVERIES = int(os.environ.get('WHR_TEST_REPLICA_DELIVERIES', '10000'))
CI = os.environ.get('CI') == 'true'

ACTIONS = (('CourseEnrollment', 0, 'Enrolled', 40),
           ('CourseStarted', 1, 'InProgress', 25),
           ('CourseCompleted', 2, 'Completed', 20),
           ('EnrollmentApprovalRequest', 3, 'PendingApproval', 5),
           ('CourseUnenrollment', 4, 'Unenrolled', 10))


def require_nginx():
    if nginx_path() is not None:
        return
    if CI:
        raise AssertionError('CI=true and nginx is not installed')
    raise unittest.SkipTest('nginx is not installed '
                            '(scripts/install-deps --test)')


# ---- the events -------------------------------------------------------------

def events(n, seed=15):
    """@n deliveries of one tracker event each: (Id, notification). Each
    course and learner always says the same of itself, and every event
    has a TimeStamp of its own, so that the tables are the same whatever
    order the events are handled in."""
    rng = random.Random(seed)
    courses = [{'Id': 'c0a5e%03d-0000-4000-8000-%012d' % (i, i),
                'Title': 'Course %02d' % i,
                'Url': 'https://lms.example.com/courses/%d' % i,
                'CourseType': 'Course', 'Published': True}
               for i in range(25)]
    learners = [{'Id': '1ea4e%03d-0000-4000-8000-%012d' % (i % 1000, i),
                 'Title': 'Learner %03d' % i,
                 'Email': 'learner%03d@example.com' % i,
                 'LoginName': 'i:0#.f|membership|learner%03d' % i,
                 'Department': 'Dept %d' % (i % 7)}
                for i in range(400)]
    weights = [a[3] for a in ACTIONS]
    out = []
    base = 1714557600      # 2024-05-01T10:00:00Z
    for i in range(n):
        action, status, text, _ = rng.choices(ACTIONS, weights)[0]
        users = rng.sample(learners, 2 if rng.random() < 0.1 else 1)
        stamp = time.strftime('%Y-%m-%dT%H:%M:%SZ',
                              time.gmtime(base + 37 * i))
        out.append(('rep-%05d' % i, {
            'Action': action, 'EnrollmentStatus': status,
            'EnrollmentStatusText': text,
            'Course': dict(rng.choice(courses)),
            'Users': [dict(u, EnrollmentId='e-%05d-%d' % (i, k))
                      for k, u in enumerate(users)],
            'TimeStamp': stamp}))
    return out


class Client:
    """One keep-alive connection, made again when the server closed it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def post(self, body):
        """The status, or None when the connection failed."""
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = w.Connection(self.port, timeout=30)
                r = self.conn.request('POST', w.WEBHOOK, body, [
                    ('Content-Type', w.JSON_TYPE),
                    ('ms-signature', w.sign(V1_SECRET, body))])
                if (r.header('Connection') or '').lower() == 'close':
                    self.close()
                return r
            except (OSError, w.Closed):
                self.close()
        return None

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def send_all(port, items, threads, on_ack=None, attempts=None):
    """Send each (Id, notification) until a 200, on @threads connections;
    None (a connection lost) and 502 (nginx lost its replica) and 503 are
    tried again with the next Attempt, as the sender does. Returns the
    statuses seen."""
    work = queue.Queue()
    for item in items:
        work.put(item)
    attempts = attempts if attempts is not None else {}
    lock = threading.Lock()
    seen = {}
    errors = []

    def run():
        client = Client(port)
        try:
            while True:
                try:
                    did, n = work.get_nowait()
                except queue.Empty:
                    return
                with lock:
                    attempts[did] = attempts.get(did, 0) + 1
                    attempt = attempts[did]
                r = client.post(w.delivery(id=did, attempt=attempt,
                                           notifications=[n]))
                status = r.status if r is not None else None
                with lock:
                    seen[status] = seen.get(status, 0) + 1
                if status == 200:
                    if on_ack is not None:
                        on_ack(did, n)
                    continue
                if status not in (None, 502, 503):
                    errors.append((did, status, r.body))
                    return
                time.sleep(0.05)
                work.put((did, n))
        finally:
            client.close()

    w.in_threads(run, [()] * threads, daemon=True)
    if errors:
        raise AssertionError('unexpected answers: %r' % errors[:5])
    return seen


# ---- three replicas behind nginx --------------------------------------------

class Nginx(NginxProcess):
    """nginx on 127.0.0.1 (plain HTTP: the test's load, not TLS) with the
    upstream of whr-replicas-site.conf, its servers the replicas, around
    whr-locations.conf."""

    def __init__(self, ports):
        super().__init__()
        os.chmod(self.dir, 0o755)
        self.port = w.free_port()
        with open(deploy_file('nginx', 'whr-replicas-site.conf')) as f:
            site = f.read()
        start = site.index('upstream whr {')
        upstream = site[start:site.index('\n}\n', start) + 3]
        for i, port in enumerate(ports):
            old = 'server whr%d:8080 ' % (i + 1)
            if upstream.count(old) != 1:
                raise AssertionError('whr-replicas-site.conf: no %r' % old)
            upstream = upstream.replace(old, 'server 127.0.0.1:%d ' % port)
        self.start('''    access_log off;
%s
    server {
        listen 127.0.0.1:%d;
        keepalive_requests 100000;
        include %s;
    }''' % (upstream, self.port, deploy_file('nginx', 'whr-locations.conf')),
                   'warn', (self.port,), program=nginx_path(),
                   connections=256)


class Replicas(postgres.ClusterTestCase):
    tmp_prefix = 'whr-replicas-'

    @classmethod
    def setUpClass(cls):
        postgres.require()
        require_nginx()
        super().setUpClass()

    def replica(self, port=0):
        return w.Server(['--trusted-proxy', '127.0.0.1', '--workers', '2'],
                        listen=('127.0.0.1:%d' % port,),
                        env=dict(SECRETS, WHR_DATABASE_FILE=self.url_file),
                        secrets=(self.pg.password,))

    def sql(self, query):
        return self.pg.psql(query, database='whr')

    def wait_handled(self, total, timeout):
        deadline = time.monotonic() + w.slow(timeout)
        while True:
            row = self.sql("SELECT count(*), count(*) FILTER (WHERE state IN"
                           " ('pending', 'retrying')), count(*) FILTER"
                           " (WHERE state = 'dead') FROM notifications")
            count, open_, dead = map(int, row.split('|'))
            self.assertEqual(dead, 0, self.sql(
                "SELECT id, error FROM notifications WHERE state = 'dead'"
                " LIMIT 5"))
            if count == total and open_ == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError('%d of %d notifications, %d open, '
                                     'after %.0f s' % (count, total, open_,
                                                       w.slow(timeout)))
            time.sleep(0.25)

    def enrollments_csv(self, args, env=None):
        rc, out, err = w.run_whr(['enrollments', '--format', 'csv', *args],
                                 env=env, timeout=60)
        self.assertEqual(rc, 0, err)
        lines = out.split('\r\n')
        return lines[0], sorted(lines[1:])

    def test_three_replicas_behind_nginx(self):
        items = events(DELIVERIES)
        rng = random.Random(1)
        pairs = set(rng.sample(range(DELIVERIES), DELIVERIES // 50))
        started = time.monotonic()
        servers = [self.replica() for _ in range(3)]
        nginx = None
        try:
            ports = [s.port for s in servers]
            nginx = Nginx(ports)
            acked = set()
            attempts = {}
            lock = threading.Lock()
            resends = []
            killed = threading.Event()

            def on_ack(did, n):
                with lock:
                    acked.add(did)
                    if rng.random() < 0.1:
                        resends.append((did, n))
                    due = len(acked) >= DELIVERIES * 2 // 5
                if due and not killed.is_set():
                    killed.set()
                    servers[1].kill()       # SIGKILL, under load

            # Some deliveries reach two replicas at the same moment, at
            # the start: both must answer 200, and it is stored once.
            def pair_lane(lane):
                for i in sorted(pairs)[lane::2]:
                    did, n = items[i]
                    barrier = threading.Barrier(2)
                    got = [None, None]

                    def one(k):
                        body = w.delivery(id=did, attempt=1 + k,
                                          notifications=[n])
                        client = Client(ports[(lane + k) % 3])
                        barrier.wait()
                        r = client.post(body)
                        client.close()
                        got[k] = r.status if r is not None else None
                    w.in_threads(one, [(0,), (1,)])
                    self.assertEqual(got, [200, 200], did)
                    with lock:
                        acked.add(did)
                        attempts[did] = 2
            w.in_threads(pair_lane, [(0,), (1,)])
            seen = send_all(nginx.port, [items[i] for i in range(DELIVERIES)
                                         if i not in pairs], 8, on_ack,
                            attempts)
            self.assertTrue(killed.is_set())
            servers[1].cleanup()
            servers[1] = self.replica(ports[1])     # started again
            # The resends, acknowledged too (duplicates).
            seen_resent = send_all(nginx.port, resends, 4, None, attempts)
            sent = time.monotonic()
            self.assertEqual(len(acked), DELIVERIES)
            self.wait_handled(DELIVERIES, 90)
            handled = time.monotonic()
        finally:
            if nginx is not None:
                nginx.stop()
            for s in servers:
                if s.running():
                    s.stop()
                s.cleanup()
        sys.stderr.write('replicas: %d deliveries (%d pairs, %d resends) in '
                         '%.1f s, handled %.1f s later; answers %r, %r\n'
                         % (DELIVERIES, len(pairs), len(resends),
                            sent - started, handled - sent, seen,
                            seen_resent))

        # Every delivery stored once, every notification handled, the
        # tracker's outcome of each written once.
        self.assertEqual(self.sql(
            "SELECT count(*), count(DISTINCT delivery_id) FROM deliveries"),
            '%d|%d' % (DELIVERIES, DELIVERIES))
        # Each 200 beyond a delivery's first was a duplicate counted on
        # it; an attempt without a 200 may have been counted too.
        oks = seen.get(200, 0) + seen_resent.get(200, 0) + 2 * len(pairs)
        others = (sum(seen.values()) + sum(seen_resent.values()) -
                  seen.get(200, 0) - seen_resent.get(200, 0))
        duplicates = int(self.sql("SELECT sum(duplicates) FROM deliveries"))
        self.assertGreaterEqual(duplicates, oks - DELIVERIES)
        self.assertLessEqual(duplicates, oks - DELIVERIES + others)
        self.assertEqual(self.sql(
            "SELECT count(*), count(*) FILTER (WHERE result = 'done'"
            " AND runs = 1) FROM outcomes WHERE handler = 'enrollments'"),
            '%d|%d' % (DELIVERIES, DELIVERIES))
        users = sum(len(n['Users']) for _, n in items)
        self.assertEqual(int(self.sql(
            "SELECT count(*) FROM enrollment_events")), users)
        self.assertEqual(self.sql(
            "SELECT count(*) FROM (SELECT delivery_id, learner_id"
            " FROM enrollment_events GROUP BY 1, 2 HAVING count(*) > 1) x"),
            '0')

        # The same events, once each, into one whr on SQLite.
        data = os.path.join(self.tmp.name, 'data')
        with w.Server(['--data-dir', data, '--workers', '2'],
                      env=SECRETS) as single:
            send_all(single.port, items, 4)
            db = sqlite3.connect('file:%s/inbox.sqlite?mode=ro' % data,
                                 uri=True, timeout=30)
            deadline = time.monotonic() + w.slow(60)
            while db.execute("SELECT count(*) FROM notifications WHERE state"
                             " IN ('pending', 'retrying')").fetchone()[0]:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
            db.close()
        expected = self.enrollments_csv(['--data-dir', data])
        got = self.enrollments_csv(['--database', self.pg.url(False)],
                                   env={'PGPASSFILE': self.passfile})
        self.assertEqual(got[0], expected[0])
        self.assertEqual(len(got[1]), len(expected[1]))
        self.assertEqual(got[1], expected[1])


# ---- the database away --------------------------------------------------------

class DatabaseAway(postgres.ClusterTestCase):
    tmp_prefix = 'whr-pg-away-'

    def test_stopped_and_started_under_load(self):
        answers = []            # (when, Id, status, Retry-After)
        lock = threading.Lock()
        stop = threading.Event()

        def sender(lane):
            client = Client(srv.port)
            n = 0
            while not stop.is_set():
                did = 'away-%d-%d' % (lane, n)
                n += 1
                r = client.post(w.delivery(id=did))
                with lock:
                    answers.append((time.monotonic(), did,
                                    r.status if r is not None else None,
                                    r.header('Retry-After')
                                    if r is not None else None))
                if r is None or r.status != 200:
                    time.sleep(0.02)
            client.close()

        def readyz():
            r = w.get(srv.port, '/readyz')
            return r.status, r.body.decode('utf-8', 'replace')

        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=dict(SECRETS, WHR_DATABASE_FILE=self.url_file),
                      secrets=(self.pg.password,)) as srv:
            lanes = [threading.Thread(target=sender, args=(k,))
                     for k in range(3)]
            for t in lanes:
                t.start()
            try:
                time.sleep(1.5)
                self.pg.pause()
                down = time.monotonic()
                time.sleep(3)
                status, why = readyz()
                self.assertEqual(status, 503, why)
                self.assertIn('connect', why)
                up_from = time.monotonic()
                self.pg.resume()
                up = time.monotonic()
                deadline = up + w.slow(5)
                while readyz()[0] != 200:
                    self.assertLess(time.monotonic(), deadline,
                                    'not ready within 5 s of the return')
                    time.sleep(0.05)
                ready = time.monotonic()
                time.sleep(1)
            finally:
                stop.set()
                for t in lanes:
                    t.join()
            log = srv.stop()

        statuses = {}
        for when, did, status, retry in answers:
            statuses[status] = statuses.get(status, 0) + 1
            self.assertIn(status, (200, 503), did)
            if status == 503:
                self.assertIsNotNone(retry, did)
            # Nothing is stored while the database is down.
            if down + 0.2 < when < up_from:
                self.assertEqual(status, 503, did)
        first_ok = min(when for when, _, status, _ in answers
                       if status == 200 and when > up)
        self.assertLess(first_ok - up, w.slow(5))
        self.assertGreater(statuses.get(503, 0), 0)
        # Every acknowledged delivery is there.
        acked = sorted(did for _, did, status, _ in answers if status == 200)
        stored = set(self.pg.psql('SELECT delivery_id FROM deliveries',
                                  database='whr').split('\n'))
        self.assertEqual([d for d in acked if d not in stored], [])
        self.assertIn('the inbox takes writes again', log)
        sys.stderr.write('database away: %.1f s; answers %r; ready %.2f s '
                         'and stored again %.2f s after its return\n'
                         % (up_from - down, statuses, ready - up,
                            first_ok - up))


if __name__ == '__main__':
    w.main()
