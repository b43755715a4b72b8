"""The `whr inbox` tool on a data folder, beside a running server (the
recorder program): list, show, stats, replay and purge, their output for
people and for scripts, and their errors."""

import concurrent.futures
import json
import os
import sqlite3
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402
from test_inbox import DataDir, calls  # noqa: E402


class InboxTool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = DataDir()
        with cls.data.recorder() as srv:
            for i, action in enumerate(['a1', 'RejectMe', 'CourseEnrollment']):
                body = w.delivery(id='%032d' % i,
                                  notifications=[{'Action': action}])
                assert w.post(srv.port, body, V1_SECRET).status == 200
            cls.data.wait_states(done=2, dead=1)
            assert w.post(srv.port, w.delivery(
                id='%032d' % 0, attempt=2,
                notifications=[{'Action': 'a1'}]), V1_SECRET).status == 200

    @classmethod
    def tearDownClass(cls):
        cls.data.cleanup()

    def test_list(self):
        out, _ = self.data.inbox('list')
        lines = out.strip().split('\n')
        self.assertRegex(lines[0], r'^NOTIF +SEQ +RECEIVED \(UTC\) +RECEIVER '
                                   r'+ID +ATTEMPT +IDX +ACTION +STATE +RUNS '
                                   r'+ERROR$')
        self.assertEqual(len(lines), 4)
        self.assertIn('CourseEnrollment', lines[1])   # newest first
        out, _ = self.data.inbox('list', '--state', 'done', '--action', 'A1')
        self.assertEqual(len(out.strip().split('\n')), 2)
        out, _ = self.data.inbox('list', '--since', '1h', '--limit', '1')
        self.assertEqual(len(out.strip().split('\n')), 2)
        out, _ = self.data.inbox('list', '--until', '2000-01-01T00:00:00Z')
        self.assertEqual(out.strip().split('\n')[1], '(none)')
        out, _ = self.data.inbox('--format', 'json', 'list', '--state',
                                 'dead')
        dead, = json.loads(out)
        self.assertEqual((dead['action'], dead['state'], dead['id']),
                         ('RejectMe', 'dead', '%032d' % 1))
        self.assertRegex(dead['received'], r'^\d{4}-\d\d-\d\dT[\d:.]+Z$')

    def test_show(self):
        out, _ = self.data.inbox('show', '%032d' % 0)
        self.assertRegex(out, r'(?m)^duplicates 1 \(last with attempt 2, ')
        self.assertRegex(out, r'(?m)^headers +Host: 127\.0\.0\.1')
        self.assertNotIn('ms-signature', out.lower())
        self.assertRegex(out, r'(?m)^  handler a1 +done +runs 1$')
        out, _ = self.data.inbox('--format', 'json', 'show', '#2')
        shown = json.loads(out)
        self.assertEqual(shown['id'], '%032d' % 1)
        self.assertIn('"RejectMe"', shown['body'])
        self.assertEqual(shown['notifications'][0]['state'], 'dead')
        reasons = {o['handler']: o['reason']
                   for o in shown['notifications'][0]['outcomes']}
        self.assertEqual(reasons['reject'],
                         'recorder rejects delivery %032d index 0' % 1)
        headers = dict(shown['headers'])
        self.assertEqual(headers['Content-Type'], w.JSON_TYPE)
        self.assertNotIn('ms-signature', [h.lower() for h in headers])

    def test_stats(self):
        out, _ = self.data.inbox('stats')
        self.assertRegex(out, r'deliveries +3 \(duplicates received: 1\)')
        self.assertRegex(out, r'pending 0, retrying 0, dead 1, done 2')
        out, _ = self.data.inbox('--format', 'json', 'stats')
        stats = json.loads(out)
        self.assertEqual(stats['notifications'],
                         {'pending': 0, 'retrying': 0, 'dead': 1, 'done': 2})
        self.assertEqual(stats['deliveries'], 3)

    def test_options_after_the_command(self):
        """--data-dir and --format are taken after the command word too,
        among its own options, with the same result as before it."""
        d = self.data.path

        def same(before, after):
            rc, out, err = w.run_whr(['inbox', *before])
            self.assertEqual(rc, 0, err)
            rc, out2, err = w.run_whr(['inbox', *after])
            self.assertEqual((rc, err), (0, ''), after)
            self.assertEqual(out2, out, after)
            return out

        for cmd, *more in [('stats',), ('list', '--state', 'done'),
                           ('show', '#2'), ('replay', '#1'),
                           ('purge', '--older-than', '3650d')]:
            with self.subTest(cmd=cmd):
                same(['--data-dir', d, '--format', 'json', cmd, *more],
                     [cmd, *more, '--data-dir', d, '--format', 'json'])
        out = same(['--data-dir', d, 'list', '--state', 'done'],
                   ['list', '--data-dir=' + d, '--state', 'done'])
        self.assertEqual(len(out.strip().split('\n')), 3)
        stats = json.loads(same(['--data-dir', d, '--format', 'json',
                                 'stats'],
                                ['--format', 'json', 'stats', '--data-dir',
                                 d]))
        self.assertEqual(stats['deliveries'], 3)
        # --database too: nobody listens on port 1, so both ways end in
        # the same connection error (before e8094d8, replay read it as
        # --dead and purge as a bad option).
        url = 'postgresql://whr@127.0.0.1:1/inbox'
        for cmd, *more in [('stats',), ('list',), ('show', '#1'),
                           ('replay', '#1'), ('backup', '/nonexistent/x'),
                           ('purge', '--older-than', '3650d')]:
            with self.subTest(cmd=cmd, database=True):
                before = w.run_whr(['inbox', '--database', url, cmd, *more])
                after = w.run_whr(['inbox', cmd, *more, '--database', url])
                self.assertEqual(after, before)
                self.assertEqual(before[0], 1, before)
                self.assertIn('cannot connect', before[2])
        # After the command, the last one given counts, as before it.
        rc, out, err = w.run_whr(['inbox', '--data-dir', '/nonexistent',
                                  'stats', '--data-dir', d])
        self.assertEqual(rc, 0, err)
        for args, message in [
                (['stats', '--format', 'csv'],
                 "unknown format 'csv': use table or json"),
                (['list', '--data-dir', ''], '--data-dir needs a folder'),
                (['stats', '--data-dir'], '')]:
            with self.subTest(args=args):
                rc, out, err = w.run_whr(['inbox', *args])
                self.assertEqual((rc, out), (2, ''), err)
                self.assertIn(message, err)

    def test_errors(self):
        self.data.inbox('show', 'nosuch', expect=1)
        self.data.inbox('list', '--state', 'weird', expect=2)
        self.data.inbox('bogus', expect=2)
        self.data.inbox('purge', expect=2)
        self.data.inbox('replay', expect=2)
        rc, out, err = w.run_whr(['inbox', '--data-dir', '/nonexistent',
                                  'list'])
        self.assertEqual(rc, 1)
        self.assertEqual(err, 'whr inbox: no data folder /nonexistent: '
                              'No such file or directory\n')

    def test_data_folder_errors(self):
        # The checks and messages whr enrollments has too (data-dir.c).
        def fails(args, status, message):
            rc, out, err = w.run_whr(['inbox', *args])
            self.assertEqual((rc, out), (status, ''), err)
            self.assertIn(message, err, args)
            self.assertTrue(err.startswith('whr inbox: '), err)
            self.assertEqual(len(err.splitlines()), 1, err)

        with tempfile.TemporaryDirectory(prefix='whr-inbox-') as tmp:
            a_file = os.path.join(tmp, 'file')
            with open(a_file, 'w') as f:
                f.write('x')
            fails(['--data-dir', a_file, 'stats'], 1,
                  'no data folder %s: not a directory' % a_file)
            empty = os.path.join(tmp, 'empty')
            os.mkdir(empty)
            fails(['--data-dir', empty, 'list'], 1,
                  'no database in %s (%s/inbox.sqlite: No such file or '
                  'directory): whr serve creates it on its first start'
                  % (empty, empty))
            junk = os.path.join(tmp, 'junk')
            os.mkdir(junk)
            with open(os.path.join(junk, 'inbox.sqlite'), 'wb') as f:
                f.write(b'this is not SQLite' * 100)
            fails(['--data-dir', junk, 'show', '#1'], 1,
                  '%s/inbox.sqlite is not a whr database this whr reads'
                  % junk)
        fails(['--data-dir', '', 'list'], 2,
              '--data-dir needs a folder (see whr inbox --help)')
        fails(['--format', 'csv', 'list'], 2,
              "unknown format 'csv': use table or json")

    def test_time_forms(self):
        """--since and --until take what whr enrollments takes: a date, a
        time to the minute, second or microsecond, or an age."""
        def count(*args):
            out, _ = self.data.inbox('--format', 'json', 'list', *args)
            return len(json.loads(out))

        def iso(us, fmt='%Y-%m-%dT%H:%M:%S'):
            return time.strftime(fmt, time.gmtime(us // 1000000))

        received = sorted(r for r, in self.data.query(
            'SELECT received_at FROM deliveries'))
        self.assertEqual(len(received), 3)
        oldest, newest = received[0], received[-1]
        self.assertEqual(count(), 3)
        # Ages, as before; a fraction too.
        ages = ('90m', '2h', '7d', '1.5d')
        if w.wrapped():
            ages = ages[::2]    # a second a run under valgrind
        for age in ages:
            self.assertEqual(count('--since', age), 3, age)
        self.assertEqual(count('--since', '0s'), 0)
        # To the microsecond: --since inclusive, --until exclusive.
        exact = iso(newest) + '.%06dZ' % (newest % 1000000)
        self.assertEqual(count('--since', exact), 1)
        self.assertEqual(count('--since', exact[:-1]), 1)  # no Z
        self.assertEqual(count('--until', exact), 2)
        after = iso(newest + 1) + '.%06d' % ((newest + 1) % 1000000)
        self.assertEqual(count('--since', after), 0)
        # To the minute, and a date alone (its midnight).
        minute = iso(oldest, '%Y-%m-%dT%H:%M')
        self.assertEqual(count('--since', minute), 3)
        self.assertEqual(count('--until', minute), 0)
        day = iso(oldest, '%Y-%m-%d')
        self.assertEqual(count('--since', day), 3)
        self.assertEqual(count('--until', day), 0)
        self.assertEqual(count('--since', day + 'T00:00:00Z'), 3)
        # A zone: an offset, or Z after the minute.
        self.assertEqual(count('--since', day + 'T02:00+02:00'), 3)
        self.assertEqual(count('--since', minute + 'Z'), 3)
        # Anything after the time, nan, a sign, spaces, other units.
        bads = (exact + 'junk', day + 'T25:00', '2024-13-01', 'nan', 'nans',
                '-1d', '+2h', ' 2h', '7w', '2h ', 'yesterday',
                # no day 30 in February, no second 60, two digits each,
                # decimal ages only
                '2024-02-30', day + 'T08:00:60', '2024-5-2', day + 'T8:0',
                '0x10s', '1e3d', '1.d', '.5d',
                # a fraction needs the seconds
                day + 'T08:00.5', day + 'T08:00.5Z')
        if w.wrapped():
            # Under valgrind each run takes a second: every other case
            # (the same parser) keeps the test well inside its time; the
            # plain and sanitizer runs check them all.
            bads = bads[::2]
        for bad in bads:
            with self.subTest(bad=bad):
                _, err = self.data.inbox('list', '--since', bad, expect=2)
                self.assertEqual(err, "whr inbox: bad --since '%s': give a "
                                      "UTC time (2024-05-01T10:15:30Z) or "
                                      "an age (7d) (see whr inbox --help)\n"
                                      % bad)
        # --older-than takes an age only.
        for bad in (day, exact, 'nan'):
            _, err = self.data.inbox('purge', '--older-than', bad, expect=2)
            self.assertIn('purge needs --older-than AGE', err)


class InboxPurge(unittest.TestCase):
    def test_purge_finished_only(self):
        data = DataDir.for_test(self)
        with data.recorder('--retry-delay', '1h') as srv:
            for action in ('a1', 'RetryMe'):
                body = w.delivery(notifications=[{'Action': action}])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            srv.records(6)
            time.sleep(0.05)
            out, _ = data.inbox('purge', '--older-than', '0s')
            self.assertIn('purged 1 finished deliveries', out)
            self.assertEqual(data.query('SELECT n.action, n.state FROM '
                                        'notifications n'),
                             [('RetryMe', 'retrying')])

    def test_purge_in_batches(self):
        # More than one transaction's worth (500 deliveries): all of them
        # go, a batch at a time, so the server never waits for the lock
        # for long.
        data = DataDir.for_test(self)
        total = 520 if w.wrapped() else 1020
        with w.Server(data.args('--handler', 'noop', '--no-enrollments'),
                      env=data.env()) as srv:
            def send(i):
                body = w.delivery(id='%032x' % i)
                return w.post(srv.port, body, V1_SECRET).status

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(send, range(total)))
            self.assertEqual(statuses, [200] * total)
            data.wait_states(done=total)
            time.sleep(0.05)
            # A delete that fails in the last batch (the newest delivery
            # goes last): the batches before it stay purged, that one is
            # rolled back whole, and the answer says how many went.
            done_first = (total - 1) // 500 * 500
            db = sqlite3.connect(os.path.join(data.path, 'inbox.sqlite'))
            db.execute("CREATE TRIGGER boom BEFORE DELETE ON deliveries "
                       "WHEN old.seq = %d BEGIN "
                       "SELECT RAISE(ABORT, 'boom'); END" % total)
            db.commit()
            rc, out, err = w.run_whr(['inbox', '--data-dir', data.path,
                                      '--format', 'json', 'purge',
                                      '--older-than', '0s'])
            self.assertEqual((rc, json.loads(out)),
                             (1, {'purged': done_first}), err)
            self.assertEqual(err, 'whr inbox: cannot purge: boom\n')
            self.assertEqual(data.query('SELECT count(*) FROM deliveries'),
                             [(total - done_first,)])
            db.execute('DROP TRIGGER boom')
            db.commit()
            db.close()
            out, _ = data.inbox('--format', 'json', 'purge',
                                '--older-than', '0s')
            self.assertEqual(json.loads(out),
                             {'purged': total - done_first})
            self.assertEqual(data.query('SELECT count(*) FROM deliveries'),
                             [(0,)])
            self.assertEqual(w.post(srv.port, w.delivery(id='f' * 32),
                                    V1_SECRET).status, 200)


class InboxReplay(unittest.TestCase):
    def test_open_work_is_left_to_the_server(self):
        # A notification still pending or retrying is the server's: it
        # holds it in memory and would write its own outcome over a
        # replay. Replay takes finished ones only, and says so.
        data = DataDir.for_test(self)
        did = 'ab' * 16
        with data.recorder('--retry-delay', '1h') as srv:
            body = w.delivery(id=did, notifications=[
                {'Action': 'a1'}, {'Action': 'RetryMe'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            before = len(srv.records(6))
            states = 'SELECT action, state, runs FROM notifications ORDER BY id'
            self.assertEqual(data.query(states),
                             [('a1', 'done', 1), ('RetryMe', 'retrying', 1)])
            outcomes = data.query('SELECT * FROM outcomes ORDER BY 1, 2')

            out, _ = data.inbox('replay', did)
            self.assertEqual(out, 'nothing to replay: %s has 1 '
                             'notification(s) still open (pending or '
                             'retrying), which whr serve runs\n' % did)
            self.assertEqual(data.query(states),
                             [('a1', 'done', 1), ('RetryMe', 'retrying', 1)])
            self.assertEqual(data.query('SELECT * FROM outcomes '
                                        'ORDER BY 1, 2'), outcomes)

            # --all-handlers: the finished one runs again, the open one
            # is still left alone.
            out, _ = data.inbox('--format', 'json', 'replay', did,
                                '--all-handlers')
            self.assertEqual(json.loads(out), {'replayed': 1, 'open': 1})
            recs = srv.records(before + 3)
            self.assertEqual(sorted(calls(recs[before:])),
                             [('a1', did, 0), ('all', did, 0),
                              ('all2', did, 0)])
            # A replay starts the count of runs over.
            self.assertEqual(data.query(states),
                             [('a1', 'done', 1), ('RetryMe', 'retrying', 1)])
            # --dead counts no open ones: its answer has no "open".
            out, _ = data.inbox('--format', 'json', 'replay', '--dead')
            self.assertEqual(json.loads(out), {'replayed': 0})
            # A delivery without notifications has nothing to replay.
            empty = 'ee' * 16
            self.assertEqual(w.post(srv.port, w.delivery(
                id=empty, notifications=[]), V1_SECRET).status, 200)
            out, _ = data.inbox('replay', empty, '--all-handlers')
            self.assertEqual(out, 'nothing to replay: %s has no '
                             'notifications\n' % empty)

    def test_replay_restarts_the_retry_budget(self):
        # A notification whose retries ran out (--retry-max-age) gets a
        # whole budget again when replayed: its retries count from the
        # replay, not from when the delivery came, so one more failure
        # does not end it at once.
        data = DataDir.for_test(self)
        did = 'cd' * 16
        # Longer than the server takes to notice a replay (up to 1 s).
        max_age = w.slow(1.5)
        with data.recorder('--retry-delay', '20ms', '--retry-max-age',
                           '%dms' % (max_age * 1000)) as srv:
            body = w.delivery(id=did, notifications=[{'Action': 'RetryMe'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            data.wait_states(dead=1)
            time.sleep(max_age)     # long past the first budget
            before = len(srv.records())
            out, _ = data.inbox('replay', did)
            self.assertIn('replayed 1 notification', out)
            data.wait_states(dead=1)
            retries = [c for c in calls(srv.records()[before:])
                       if c[0] == 'retry']
            # Without the new budget it ran once, and was dead again.
            self.assertGreater(len(retries), 1)
            (runs, error), = data.query('SELECT runs, error FROM '
                                        'notifications')
            self.assertEqual(runs, len(retries))
            self.assertRegex(error, r'^retries ran out')


class InboxSchema(unittest.TestCase):
    def test_version_1_is_read_then_migrated(self):
        # An inbox made by a whr of schema version 1 (before retry_from):
        # the tool reads it, changes it only once whr serve has brought
        # it to version 2, and nothing stored is lost on the way.
        data = DataDir.for_test(self)
        did = 'ef' * 16
        with data.recorder() as srv:
            body = w.delivery(id=did, notifications=[{'Action': 'RejectMe'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            data.wait_states(dead=1)
        path = os.path.join(data.path, 'inbox.sqlite')
        db = sqlite3.connect(path)
        db.executescript('ALTER TABLE notifications DROP COLUMN retry_from;'
                         'PRAGMA user_version = 1;')
        db.close()

        out, _ = data.inbox('list', '--state', 'dead')
        self.assertIn('RejectMe', out)
        rc, out, err = w.run_whr(['inbox', '--data-dir', data.path,
                                  'replay', did])
        self.assertEqual((rc, out), (1, ''), err)
        self.assertEqual(err, 'whr inbox: %s has schema version 1: start '
                         'this whr serve once, which brings it to version '
                         '2, then try again\n' % path)

        with data.recorder() as srv:
            srv.wait_log(r'info +inbox %s: schema version 1, migrating to 2'
                         % path)
            before = len(srv.records())
            out, _ = data.inbox('replay', did)
            self.assertIn('replayed 1 notification', out)
            recs = srv.records(before + 1)
            self.assertIn(('reject', did, 0), calls(recs[before:]))
            data.wait_states(dead=1)
        self.assertEqual(data.query('PRAGMA user_version'), [(2,)])
        self.assertEqual(data.query('SELECT count(*) FROM deliveries'),
                         [(1,)])


if __name__ == '__main__':
    unittest.main(verbosity=2)
