"""whr serve and whr inbox on PostgreSQL (issue 15), in a throwaway
cluster (whrtest/postgres.py): a delivery stored through --database and
counted by whr inbox --database; the password only ever in PGPASSFILE or
the WHR_DATABASE_FILE, never in a log, an error or the environment left
to children; a command line with a password refused; a location left on
a standby by a failover refused, with a backoff, until the standby is
promoted. Suite postgres:
skipped without PostgreSQL, except under CI=true."""

import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402
from whrtest import postgres  # noqa: E402
from test_metrics import wait_for  # noqa: E402
from test_jsonl import preloaded  # noqa: E402

SECRETS = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}


def recorded(path):
    """The words a handler appended to @path, none while it has not
    written yet."""
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


class Postgres(postgres.ClusterTestCase):
    tmp_prefix = 'whr-pg-test-'

    def inbox(self, *args, env=None, expect=0):
        rc, out, err = w.run_whr(['inbox', *args], env=env, timeout=30)
        self.assertEqual(rc, expect, err)
        self.assertNotIn(self.pg.password, out + err)
        return out, err

    def stats(self):
        out, _ = self.inbox('--database', self.pg.url(password=False),
                            '--format', 'json', 'stats',
                            env={'PGPASSFILE': self.passfile})
        return json.loads(out)

    def test_serve_stores_and_inbox_counts(self):
        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=dict(SECRETS, WHR_DATABASE_FILE=self.url_file),
                      secrets=(self.pg.password,)) as srv:
            for i in range(3):
                body = w.delivery(id='pg-%d' % i,
                                  notifications=[{'Action': 'A'},
                                                 {'Action': 'B'}])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            # A resend: acknowledged, counted on the original.
            body = w.delivery(id='pg-0', attempt=2,
                              notifications=[{'Action': 'A'},
                                             {'Action': 'B'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            deadline = time.monotonic() + w.slow(10)
            while self.stats()['notifications']['done'] < 6:
                self.assertLess(time.monotonic(), deadline, self.stats())
                time.sleep(0.1)
            log = srv.stop()
        self.assertIn('postgresql://whr@127.0.0.1:%d/whr' % self.pg.port, log)
        stats = self.stats()
        self.assertEqual(stats['deliveries'], 3)
        self.assertEqual(stats['duplicates'], 1)
        self.assertEqual(stats['notifications'],
                         {'pending': 0, 'retrying': 0, 'dead': 0, 'done': 6})
        # The same through WHR_DATABASE_FILE, and as a table.
        out, _ = self.inbox('stats', env={'WHR_DATABASE_FILE': self.url_file})
        self.assertRegex(out, r'deliveries +3 \(duplicates received: 1\)')
        out, _ = self.inbox('list', '--state', 'done', '--action', 'a',
                            env={'WHR_DATABASE_FILE': self.url_file})
        self.assertEqual(len(out.strip().split('\n')), 4)

    def test_server_restarted(self):
        # PostgreSQL restarts (as after a failover): what was being
        # stored then fails with 503, never 200, and whr connects again
        # by itself; every acknowledged delivery is there.
        acknowledged = 0
        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=dict(SECRETS, WHR_DATABASE_FILE=self.url_file),
                      secrets=(self.pg.password,)) as srv:
            before = self.stats()['deliveries']

            def send(n):
                body = w.delivery(id='restart-%d' % n,
                                  notifications=[{'Action': 'A'}])
                return w.post(srv.port, body, V1_SECRET).status
            self.assertEqual(send(0), 200)
            acknowledged += 1
            self.pg.restart()
            n, deadline, statuses = 1, time.monotonic() + w.slow(15), []
            while time.monotonic() < deadline:
                status = send(n)
                statuses.append(status)
                self.assertIn(status, (200, 503))
                n += 1
                if status == 200:
                    acknowledged += 1
                    if statuses.count(200) >= 3:
                        break
                else:
                    time.sleep(0.2)
            self.assertGreaterEqual(statuses.count(200), 3, statuses)
            self.assertEqual(w.get(srv.port, '/readyz').status, 200)
            srv.stop()
        self.assertEqual(self.stats()['deliveries'] - before, acknowledged)

    def test_standby_refused_until_promoted(self):
        # A failover that leaves whr's location on a standby: whr does
        # not write there (503, /readyz naming the standby) and connects
        # again with a backoff, not once per delivery; whr inbox reads
        # from it; once it is promoted, deliveries are stored again, and
        # the one acknowledged before is there.
        primary = postgres.Cluster().start()
        self.addCleanup(primary.stop)
        if int(primary.psql('SHOW server_version_num')) < 140000:
            self.skipTest('in_hot_standby: PostgreSQL 14 and later')
        url_file = primary.url_file(self.tmp.name, name='failover-url')
        env = dict(SECRETS, WHR_DATABASE_FILE=url_file)

        def send(srv, n):
            body = w.delivery(id='failover-%d' % n,
                              notifications=[{'Action': 'A'}])
            return w.post(srv.port, body, V1_SECRET).status
        with w.Server(['--no-enrollments', '--handler', 'noop'], env=env,
                      secrets=(primary.password,)) as srv:
            self.assertEqual(send(srv, 0), 200)
            standby = primary.standby()
            self.addCleanup(standby.stop)
            primary.pause()
            standby.start_standby(primary.port,
                                  ['-c', 'log_connections=on'])
            statuses, n = [], 1
            started = time.monotonic()
            while time.monotonic() - started < 3:
                statuses.append(send(srv, n))
                n += 1
                time.sleep(0.005)
            self.assertEqual(set(statuses), {503}, statuses)
            # A connection per delivery would be one per 503 here; whr
            # keeps trying, backing off up to a second (the listener
            # too).
            connections = standby.server_log().count(
                'connection authorized: user=whr')
            self.assertGreater(len(statuses), 60)
            self.assertLess(connections, 30, standby.server_log())
            self.assertGreaterEqual(connections, 2)
            ready = w.get(srv.port, '/readyz')
            self.assertEqual(ready.status, 503)
            self.assertIn('standby', ready.body.decode())
            out, _ = self.inbox('stats', env={'WHR_DATABASE_FILE': url_file})
            self.assertRegex(out, r'deliveries +1\b')

            # A whr started while the location reaches the standby
            # listens, refuses deliveries saying why, and opens its
            # inbox once the standby is promoted.
            with w.Server(['--no-enrollments', '--handler', 'noop'],
                          env=env, secrets=(primary.password,)) as late:
                self.assertEqual(send(late, n), 503)
                n += 1
                ready = w.get(late.port, '/readyz')
                self.assertEqual(ready.status, 503)
                self.assertIn('standby', ready.body.decode())

                standby.promote()
                stored = []
                for server in (srv, late):
                    deadline = time.monotonic() + w.slow(10)
                    while send(server, n) != 200:
                        self.assertLess(time.monotonic(), deadline)
                        n += 1
                        time.sleep(0.1)
                    stored.append('failover-%d' % n)
                    n += 1
                late.stop()
            srv.stop()
        self.assertEqual(standby.psql(
            "SELECT string_agg(delivery_id, ' ' ORDER BY seq)"
            " FROM deliveries", database='whr'),
            ' '.join(['failover-0'] + stored))

    def test_password_never_shown(self):
        # A URL with its password on a command line: refused, unshown.
        rc, out, err = w.run_whr(
            ['serve', '--no-enrollments', '--database', self.pg.url()],
            env=SECRETS, check_secrets=False)
        self.assertEqual(rc, 2, err)
        self.assertIn('no password on the command line', err)
        self.assertNotIn(self.pg.password, out + err)
        _, err = self.inbox('--database', self.pg.url(), 'stats', expect=2)
        self.assertIn('no password in --database', err)
        # A wrong password: the failure says where, never what.
        wrong = self.pg.url().replace(self.pg.password, 'Wr0ng-pw-123')
        _, err = self.inbox('stats', env={'WHR_DATABASE': wrong}, expect=1)
        self.assertIn('password authentication failed', err)
        self.assertNotIn('Wr0ng-pw-123', err)
        # A URL in WHR_DATABASE is wiped once read: an exec handler's
        # command (a child) does not inherit it.
        env = dict(SECRETS, WHR_DATABASE=self.pg.url())
        with w.Server(['--no-enrollments', '--handler', 'noop'], env=env,
                      secrets=(self.pg.password,)) as srv:
            with open('/proc/%d/environ' % srv.pid, 'rb') as f:
                environ = f.read()
            self.assertNotIn(self.pg.password.encode(), environ)
            srv.stop()

    def test_pgpassword_refused(self):
        # libpq would read PGPASSWORD at each connection, so it would
        # stay in whr's environment: refused with a database, wiped
        # without one.
        env = dict(SECRETS, PGPASSWORD=self.pg.password,
                   WHR_DATABASE=self.pg.url(password=False))
        rc, out, err = w.run_whr(['serve', '--no-enrollments'], env=env,
                                 check_secrets=False)
        self.assertEqual(rc, 2, err)
        self.assertIn('PGPASSWORD is not taken', err)
        self.assertIn('PGPASSFILE', err)
        self.assertNotIn(self.pg.password, out + err)
        env = dict(SECRETS, PGPASSWORD=self.pg.password)
        with w.Server(['--no-enrollments', '--data-dir',
                       os.path.join(self.tmp.name, 'pgpassword-data')],
                      env=env, secrets=(self.pg.password,)) as srv:
            with open('/proc/%d/environ' % srv.pid, 'rb') as f:
                environ = f.read()
            self.assertNotIn(self.pg.password.encode(), environ)
            srv.stop()

    def test_retry_comes_back_when_due(self):
        # A handler asks for a retry: the notification leaves the
        # replica's memory and is claimed again once it is due.
        self.pg.psql('CREATE DATABASE retries OWNER whr')
        url_file = self.pg.url_file(self.tmp.name, 'retries-url',
                                    database='retries')
        marker = os.path.join(self.tmp.name, 'first-run')
        command = ("sh -c 'test -e %s && exit 0; : > %s; exit 75'"
                   % (marker, marker))
        with w.Server(['--no-enrollments', '--handler',
                       'exec:*=' + command, '--retry-delay', '1s'],
                      env=dict(SECRETS, WHR_DATABASE_FILE=url_file),
                      secrets=(self.pg.password,)) as srv:
            body = w.delivery(id='retried', notifications=[{'Action': 'A'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            deadline = time.monotonic() + w.slow(10)
            while self.pg.psql("SELECT state || ' ' || runs FROM"
                               " notifications", database='retries') \
                    != 'done 2':
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
            srv.stop()

    def test_gauges_count_every_replicas_work(self):
        # /metrics' gauges count the open work in the database, whichever
        # replica stored it: two replicas, each storing one delivery
        # whose handler asks to retry in an hour; each page shows both.
        self.pg.psql('CREATE DATABASE gauges OWNER whr')
        url_file = self.pg.url_file(self.tmp.name, 'gauges-url',
                                    database='gauges')
        args = ['--no-enrollments', '--handler', "exec:*=sh -c 'exit 75'",
                '--retry-delay', '1h']
        env = dict(SECRETS, WHR_DATABASE_FILE=url_file)
        with w.Server(args, env=env, secrets=(self.pg.password,)) as a, \
                w.Server(args, env=env, secrets=(self.pg.password,)) as b:
            for srv, id in ((a, 'on-a'), (b, 'on-b')):
                body = w.delivery(id=id, notifications=[{'Action': 'A'}])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            for srv in (a, b):
                page = wait_for(
                    srv.port,
                    lambda p: p.value('whr_inbox_open_notifications') == 2
                    and p.value('whr_inbox_oldest_open_seconds') >= 1,
                    timeout=10, what='both replicas\' open work')
                self.assertEqual(page.value('whr_deliveries_total',
                                            receiver='', result='stored'),
                                 1)
            b.stop()
            a.stop()

    def backlog(self, database, prefix, n):
        """A database of its own holding n pending notifications, each a
        key of its own (made dead by a rejecting handler, then
        replayed): the server's environment for it, and a function
        that counts its notifications by state."""
        self.pg.psql('CREATE DATABASE %s OWNER whr' % database)
        url_file = self.pg.url_file(self.tmp.name, database + '-url',
                                    database=database)
        env = dict(SECRETS, WHR_DATABASE_FILE=url_file)

        def counts():
            out, _ = self.inbox('--format', 'json', 'stats',
                                env={'WHR_DATABASE_FILE': url_file})
            return json.loads(out)['notifications']

        with w.Server(['--no-enrollments', '--handler', 'exec:*=false',
                       '--workers', '2'],
                      env=env, secrets=(self.pg.password,)) as srv:
            for i in range(n):
                body = w.delivery(id='%s-%03d' % (prefix, i),
                                  notifications=[{'Action': 'A'}])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            w.wait_until('%d notifications dead' % n,
                         lambda: counts()['dead'] >= n, timeout=60,
                         interval=0.2)
            srv.stop()
        self.inbox('replay', '--dead', env={'WHR_DATABASE_FILE': url_file})
        self.assertEqual(counts()['pending'], n)
        return env, counts

    def test_claims_grow_while_workers_run_dry(self):
        # Fast handlers empty what a claim brings within a round of the
        # store thread: the amount claimed doubles while they do. A
        # backlog of 600 notifications, each a key of its own (made dead
        # by a rejecting handler, then replayed), drained by claims that
        # reach 64 or 128; at the least amount (4 a worker, 2 workers),
        # 8. Claims and the amounts they asked for ($3) read in the
        # server's log. (Their number, about a dozen, is no measure: on
        # a busy machine the workers are slower, and claims that top up
        # what each round finished make it 30 or 60.)
        n = 600
        env, counts = self.backlog('claims', 'claim', n)
        self.pg.psql("ALTER DATABASE claims SET log_statement = 'all'")
        mark = len(self.pg.server_log())
        try:
            with w.Server(['--no-enrollments', '--handler', 'noop',
                           '--workers', '2'],
                          env=env, secrets=(self.pg.password,)) as srv:
                w.wait_until('%d notifications done' % n,
                             lambda: counts()['done'] >= n, timeout=60,
                             interval=0.2)
                srv.stop()
        finally:
            self.pg.psql('ALTER DATABASE claims RESET log_statement')
        log = self.pg.server_log()[mark:]
        claims = log.count(' eligible AS (SELECT n.id,')
        asked = [int(n) for n in re.findall(
            r"parameters: \$1 = '\d+', \$2 = '\d+', \$3 = '(\d+)'", log)]
        self.assertGreater(claims, 0)
        self.assertEqual(len(asked), claims, 'one amount a claim')
        self.assertEqual(asked[0], 8, asked)
        self.assertGreaterEqual(max(asked), 32, asked)

    def test_new_work_waits_behind_older_work(self):
        # A commit leases the new work it stores only while no older
        # work waits to be claimed: new deliveries do not overtake a
        # backlog, which claims hand out oldest first. A backlog of 300
        # notifications, each a key of its own (made dead by a rejecting
        # handler, then replayed); one worker, whose handler records the
        # order it runs them in; 20 new deliveries posted as the backlog
        # drains run after all of it.
        n, fresh = 300, 20
        env, _ = self.backlog('behind', 'old', n)
        runs = os.path.join(self.tmp.name, 'behind-runs')

        def ran():
            return recorded(runs)

        handler = ("exec:*=sh -c 'cat >/dev/null;"
                   " echo $WHR_DELIVERY_ID >> %s; sleep 0.005'" % runs)
        with w.Server(['--no-enrollments', '--handler', handler,
                       '--workers', '1'],
                      env=env, secrets=(self.pg.password,)) as srv:
            w.wait_until('the backlog running', lambda: len(ran()) >= 10,
                         timeout=60, interval=0.05)
            for i in range(fresh):
                body = w.delivery(id='new-%03d' % i,
                                  notifications=[{'Action': 'A'}])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            self.assertLess(len(ran()), n, 'the backlog ran out first')
            w.wait_until('all done', lambda: len(ran()) >= n + fresh,
                         timeout=60, interval=0.05)
            srv.stop()
        order = ran()
        self.assertEqual(sorted(order),
                         sorted(['old-%03d' % i for i in range(n)] +
                                ['new-%03d' % i for i in range(fresh)]))
        self.assertEqual(order[:n], ['old-%03d' % i for i in range(n)])

    def test_leases_timed_by_the_database_clock(self):
        # A replica whose wall clock runs a minute ahead of the others'
        # must not see their leases as run out, and take over work that
        # is running: leases are timed by the database server's clock.
        # One notification, whose handler runs 8 s on replica a; b
        # starts, clock 60 s ahead, while it runs, and claims (counted
        # in the server's log, by b's connections); the notification
        # runs once.
        self.pg.psql('CREATE DATABASE clocks OWNER whr')
        url_file = self.pg.url_file(self.tmp.name, 'clocks-url',
                                    database='clocks')
        b_url_file = postgres.write_private(
            os.path.join(self.tmp.name, 'clocks-url-b'),
            self.pg.url(database='clocks') + '?application_name=whr-b\n')
        runs = os.path.join(self.tmp.name, 'clock-runs')
        args = ['--no-enrollments', '--handler',
                "exec:*=sh -c 'cat >/dev/null; echo run >> %s; sleep 8'"
                % runs]
        ahead = dict(SECRETS, WHR_DATABASE_FILE=b_url_file,
                     LD_PRELOAD=preloaded(
                         os.environ['WHR_TEST_CLOCK_OFFSET']),
                     WHR_TEST_CLOCK_OFFSET_S='60')

        def lines():
            return recorded(runs)

        def done():
            out, _ = self.inbox('--format', 'json', 'stats',
                                env={'WHR_DATABASE_FILE': url_file})
            return json.loads(out)['notifications']['done']

        self.pg.psql("ALTER DATABASE clocks SET log_statement = 'all'")
        self.addCleanup(self.pg.psql,
                        'ALTER DATABASE clocks RESET log_statement')
        with w.Server(args, env=dict(SECRETS, WHR_DATABASE_FILE=url_file),
                      secrets=(self.pg.password,)) as a:
            body = w.delivery(id='clocks-1', notifications=[{'Action': 'A'}])
            self.assertEqual(w.post(a.port, body, V1_SECRET).status, 200)
            deadline = time.monotonic() + w.slow(10)
            while not lines():
                self.assertLess(time.monotonic(), deadline, 'no run')
                time.sleep(0.05)
            with w.Server(args, env=ahead,
                          secrets=(self.pg.password,)) as b:
                deadline = time.monotonic() + w.slow(10)
                while w.get(b.port, '/readyz').status != 200:
                    self.assertLess(time.monotonic(), deadline, 'b ready')
                    time.sleep(0.05)
                pids = self.pg.psql(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE application_name = 'whr-b'").split()
                self.assertTrue(pids)
                time.sleep(2)   # b's claims: at its start, every second
                claims = [line for line in
                          self.pg.server_log().splitlines()
                          if ' eligible AS (SELECT n.id,' in line and
                          any('[%s]' % pid in line for pid in pids)]
                # Still a's run: b claimed while a's lease held.
                self.assertEqual(done(), 0)
                self.assertTrue(claims, 'b made no claim')
                deadline = time.monotonic() + w.slow(20)
                while done() != 1:
                    self.assertLess(time.monotonic(), deadline, lines())
                    time.sleep(0.2)
                b.stop()
            a.stop()
        self.assertEqual(lines(), ['run'])

    def test_claim_lock_held_elsewhere(self):
        # While another session holds the claim lock (as another
        # replica's claim does until its commit), whr claims nothing but
        # goes on storing deliveries and stays ready: a claim that finds
        # the lock taken is no failure. Released, the work is claimed
        # and done at once, not left for later.
        self.pg.psql('CREATE DATABASE held OWNER whr')
        url_file = self.pg.url_file(self.tmp.name, 'held-url',
                                    database='held')
        argv = [self.pg._prog('psql'), '-h', self.pg.sockets, '-p',
                str(self.pg.port), '-U', 'postgres', '-d', 'held', '-X',
                '-A', '-t', '-q']
        if os.geteuid() == 0:
            argv = ['runuser', '-u', 'postgres', '--'] + argv
        holder = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True,
                                  cwd=self.pg.tmp)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.stdin.close)

        def done():
            out, _ = self.inbox('--format', 'json', 'stats',
                                env={'WHR_DATABASE_FILE': url_file})
            return json.loads(out)['notifications']['done']

        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=dict(SECRETS, WHR_DATABASE_FILE=url_file),
                      secrets=(self.pg.password,)) as srv:
            holder.stdin.write(
                'SELECT pg_advisory_lock(2003333635);\n'
                "SELECT 'held';\n")
            holder.stdin.flush()
            line = ''
            while line != 'held':   # pg_advisory_lock's empty row first
                line = holder.stdout.readline()
                self.assertTrue(line, 'psql ended')
                line = line.strip()
            for i in range(5):
                body = w.delivery(id='held-%d' % i,
                                  notifications=[{'Action': 'A'}])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            time.sleep(1.5)     # a tick, and claims told the lock is taken
            self.assertEqual(done(), 0)
            self.assertEqual(w.get(srv.port, '/readyz').status, 200)
            holder.stdin.write('SELECT pg_advisory_unlock(2003333635);\n')
            holder.stdin.flush()
            deadline = time.monotonic() + w.slow(3)
            while done() < 5:
                self.assertLess(time.monotonic(), deadline, done())
                time.sleep(0.05)
            log = srv.stop()
        self.assertNotIn('cannot', log)

    def test_sqlite_only_handler_refused(self):
        # A transactional handler whose tables are set up for SQLite
        # only: whr serve does not start on PostgreSQL (a configuration
        # error, exit 2), naming it; it never runs less than exactly
        # once.
        rc, out, err = w.run_whr(['serve', '--listen', '127.0.0.1:0',
                                  '--no-enrollments', '--plugin',
                                  os.environ['WHR_TEST_SQLITE_ONLY_PLUGIN']],
                                 env=dict(SECRETS,
                                          WHR_DATABASE_FILE=self.url_file),
                                 timeout=30)
        self.assertEqual(rc, 2, err)
        self.assertIn('handler sqlite-only cannot run on PostgreSQL', err)
        self.assertNotIn(self.pg.password, out + err)

    def test_enrollment_tracker_runs(self):
        # The tracker has its tables on PostgreSQL too: on by default,
        # its event in the delivery's claim, readable by whr
        # enrollments --database.
        body = w.delivery(id='pg-enrollment', notifications=[{
            'Action': 'CourseEnrollment',
            'Course': {'Id': 'C-PG', 'Title': 'Postgres 101'},
            'Users': [{'Id': 'U-1', 'Email': 'u1@example.com'}],
            'TimeStamp': '2024-05-01T10:00:00Z'}])
        # A database of its own: the other tests count deliveries.
        self.pg.psql('CREATE DATABASE tracker OWNER whr')
        url_file = self.pg.url_file(self.tmp.name, 'tracker-url',
                                    database='tracker')
        with w.Server([], env=dict(SECRETS, WHR_DATABASE_FILE=url_file),
                      secrets=(self.pg.password,)) as srv:
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            deadline = time.monotonic() + w.slow(10)
            while True:
                rc, out, err = w.run_whr(
                    ['enrollments', '--database',
                     self.pg.url(False, database='tracker'),
                     '--format', 'csv'],
                    env={'PGPASSFILE': self.passfile}, timeout=30)
                self.assertEqual(rc, 0, err)
                if 'C-PG' in out or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            srv.stop()
        self.assertIn('C-PG,Postgres 101,U-1,u1@example.com,,enrolled,1,',
                      out)


if __name__ == '__main__':
    w.main()
