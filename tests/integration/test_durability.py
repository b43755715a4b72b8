"""What "acknowledged" means, tested the hard way: kill -9 under load, a
read-only data folder and a full disk. A 200 is only ever given for a
delivery that is on disk; after any crash every acknowledged delivery is
there and handled, and the transactional handler applied it exactly
once."""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}


def can_mount():
    return os.geteuid() == 0 and shutil.which('mount') is not None


MIN_KILLS = 5


class KillNine(unittest.TestCase):
    def test_kill_9_under_load_loses_nothing_acknowledged(self):
        total = 150 if w.wrapped() else 3000
        tmp = tempfile.TemporaryDirectory(prefix='whr-kill-')
        self.addCleanup(tmp.cleanup)
        data = os.path.join(tmp.name, 'data')
        record = os.path.join(tmp.name, 'record.txt')
        port = w.restart_port()
        args = ['--data-dir', data, '--workers', '2']
        env = dict(ENV, WHR_RECORD=record, WHR_RECORD_TX='1')
        ids = ['%032x' % (i + 1) for i in range(total)]
        acked, lock, stop = set(), threading.Lock(), threading.Event()
        senders = [w.Sender(port, ids[k::4], acked, lock, stop)
                   for k in range(4)]

        def start():
            return w.Server(args, program='recorder', env=env,
                            listen=['127.0.0.1:%d' % port])

        deadline = time.monotonic() + w.slow(60)
        with w.kill_under_load(self, start, senders, stop, MIN_KILLS, 42,
                               deadline):
            # Let the last server finish the work; leaving the block
            # stops it.
            db_path = os.path.join(data, 'inbox.sqlite')
            while True:
                with sqlite3.connect('file:%s?mode=ro' % db_path,
                                     uri=True, timeout=10) as db:
                    (open_,), = db.execute(
                        "SELECT count(*) FROM notifications WHERE state "
                        "<> 'done'").fetchall()
                if open_ == 0:
                    break
                self.assertLess(time.monotonic(), deadline, 'not handled')
                time.sleep(0.05)
        self.assertEqual(acked, set(ids))
        with sqlite3.connect(os.path.join(data, 'inbox.sqlite')) as db:
            stored = {r[0] for r in db.execute(
                'SELECT delivery_id FROM deliveries')}
            (n_deliveries,), = db.execute(
                'SELECT count(*) FROM deliveries').fetchall()
            states = dict(db.execute('SELECT state, count(*) FROM '
                                     'notifications GROUP BY state'))
            applied = dict(db.execute('SELECT delivery, applied FROM '
                                      'recorder_applied'))
        # Every acknowledged delivery is stored, once, and handled.
        self.assertEqual(stored, acked)
        self.assertEqual(n_deliveries, total)
        self.assertEqual(states, {'done': total})
        # The transactional handler applied each exactly once.
        self.assertEqual(set(applied), acked)
        self.assertEqual({d: n for d, n in applied.items() if n != 1}, {})


@unittest.skipUnless(can_mount(), 'needs root to mount a small tmpfs')
class BrokenDisk(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-disk-')
        self.mnt = os.path.join(self.tmp.name, 'mnt')
        os.mkdir(self.mnt)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs',
                        self.mnt], check=True)
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(subprocess.run, ['umount', '-l', self.mnt])
        self.data = os.path.join(self.mnt, 'data')

    def post(self, srv):
        return w.post(srv.port, w.delivery(notifications=[{'Action': 'a1'}]),
                      V1_SECRET)

    def fill(self):
        """Fill the file system; returns the file to delete for room."""
        filler = os.path.join(self.mnt, 'filler')
        # Unbuffered: nothing left to flush (and fail) at close when the
        # disk is full in the middle of a block.
        with open(filler, 'wb', buffering=0) as f:
            try:
                while True:
                    f.write(b'\0' * 65536)
            except OSError:
                pass
        return filler

    def wait_state(self, state):
        """Wait until the only notification has this (state, runs)."""
        db_path = os.path.join(self.data, 'inbox.sqlite')
        deadline = time.monotonic() + w.slow(15)
        while True:
            with sqlite3.connect(db_path) as db:
                states = db.execute('SELECT state, runs FROM '
                                    'notifications').fetchall()
            if states == [state]:
                return
            self.assertLess(time.monotonic(), deadline, states)
            time.sleep(0.05)

    def ready(self, srv):
        return w.request('GET', '/readyz', port=srv.port).status

    def assert_refused(self, srv):
        for _ in range(3):
            r = self.post(srv)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.header('Retry-After'), '30')
            self.assertIn(b'the inbox cannot store deliveries now', r.body)
        self.assertEqual(self.ready(srv), 503)

    def assert_recovers(self, srv):
        deadline = time.monotonic() + w.slow(10)
        while True:
            r = self.post(srv)
            if r.status == 200:
                break
            self.assertEqual(r.status, 503, r)
            self.assertLess(time.monotonic(), deadline, 'never recovered')
            time.sleep(0.1)
        self.assertEqual(self.ready(srv), 200)

    def test_read_only_data_folder(self):
        # A file system cannot turn read-only under a file open for
        # writing, so whr starts on one that is (a mount not writable yet,
        # say): it runs, answers 503, and opens the inbox once it can.
        with w.Server(['--data-dir', self.data], env=ENV) as srv:
            self.assertEqual(self.post(srv).status, 200)
        subprocess.run(['mount', '-o', 'remount,ro', self.mnt], check=True)
        try:
            with w.Server(['--data-dir', self.data], env=ENV) as srv:
                srv.wait_log(r'error +inbox \S+: cannot')
                self.assert_refused(srv)
                subprocess.run(['mount', '-o', 'remount,rw', self.mnt],
                               check=True)
                self.assert_recovers(srv)
                srv.wait_log(r'info +inbox \S+ opened: ')
                srv.wait_log(r'info +the inbox takes writes again')
        finally:
            subprocess.run(['mount', '-o', 'remount,rw', self.mnt])
        with sqlite3.connect(os.path.join(self.data, 'inbox.sqlite')) as db:
            (n,), = db.execute('SELECT count(*) FROM deliveries').fetchall()
        self.assertEqual(n, 2)

    def test_full_disk(self):
        with w.Server(['--data-dir', self.data], env=ENV) as srv:
            self.assertEqual(self.post(srv).status, 200)
            filler = self.fill()
            try:
                self.assert_refused(srv)
                srv.wait_log(r'full')
            finally:
                os.unlink(filler)
            # Ready again without a delivery to find out: a load balancer
            # that follows /readyz sends none while it says 503.
            deadline = time.monotonic() + w.slow(10)
            while self.ready(srv) != 200:
                self.assertLess(time.monotonic(), deadline, 'never ready')
                time.sleep(0.1)
            srv.wait_log(r'info +the inbox takes writes again')
            self.assert_recovers(srv)
        # Everything acknowledged is there.
        with sqlite3.connect(os.path.join(self.data, 'inbox.sqlite')) as db:
            (n,), = db.execute('SELECT count(*) FROM deliveries').fetchall()
        self.assertEqual(n, 2)

    def test_outcomes_that_hit_a_full_disk_are_written_once_it_has_room(self):
        # The disk fills while the handlers run: the batch with their
        # outcomes fails, and is written again once there is room. Every
        # outcome must be there then, each handler called once, and the
        # notification (rejected) said dead once, when it is.
        env = dict(ENV, WHR_RECORD_SLEEP_MS=str(w.slow(1500)))
        with w.Server(['--data-dir', self.data], program='recorder',
                      env=env) as srv:
            body = w.delivery(notifications=[{'Action': 'RejectMe'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            srv.records(2)      # reject has said no; all is asleep
            filler = self.fill()
            try:
                srv.wait_log(r'error +the inbox cannot take writes: .*full',
                             timeout=10)
            finally:
                os.unlink(filler)
            srv.wait_log(r'info +the inbox takes writes again', timeout=10)
            self.wait_state(('dead', 1))
            recs = srv.records(3)
            log = srv.log()
        with sqlite3.connect(os.path.join(self.data, 'inbox.sqlite')) as db:
            outcomes = db.execute('SELECT handler, result, runs FROM '
                                  'outcomes ORDER BY handler').fetchall()
        self.assertEqual(outcomes, [('all', 'done', 1), ('all2', 'done', 1),
                                    ('reject', 'reject', 1)])
        self.assertEqual(sorted(r.handler for r in recs
                                if r.handler != 'destroy'),
                         ['all', 'all2', 'reject'])
        self.assertEqual(log.count('notification is dead'), 1, log)

    def test_a_failed_batch_keeps_an_earlier_reject(self):
        # tx asks to retry TxRetry's first run, txno (after it) rejects
        # it. On the retry tx is done, so the notification is dead; that
        # batch hits a full disk. Written again, it must still be dead:
        # txno's stored reject is not undone with tx's run.
        delay = max(3, round(w.slow(3)))
        env = dict(ENV, WHR_RECORD_TX='first', WHR_RECORD_TX_NO='1')
        with w.Server(['--data-dir', self.data, '--retry-delay',
                       '%ds' % delay], program='recorder', env=env) as srv:
            body = w.delivery(notifications=[{'Action': 'TxRetry'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.wait_state(('retrying', 1))
            filler = self.fill()
            try:
                srv.wait_log(r'error +the inbox cannot take writes: .*full',
                             timeout=delay + 10)
            finally:
                os.unlink(filler)
            self.wait_state(('dead', 2))
        with sqlite3.connect(os.path.join(self.data, 'inbox.sqlite')) as db:
            outcomes = db.execute("SELECT handler, result FROM outcomes"
                                  " WHERE handler LIKE 'tx%'"
                                  " ORDER BY handler").fetchall()
        self.assertEqual(outcomes, [('tx', 'done'), ('txno', 'reject')])


if __name__ == '__main__':
    unittest.main(verbosity=2)
