"""`whr inbox backup DEST` (issue 14): a consistent copy of the inbox
taken while whr serves under a flow of deliveries, opened as a data
folder of its own, restored as docs/operations.md says; DEST is 0600,
never replaced without --force, and no temporary file is left behind."""

import json
import os
import sqlite3
import stat
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
ARGS = ['--no-enrollments', '--handler', 'noop']
PER_DELIVERY = 3


def notifications(did):
    return [{'Action': 'a%d' % i, 'Id': did} for i in range(PER_DELIVERY)]


def inbox(*args, expect=0):
    rc, out, err = w.run_whr(['inbox', *args])
    if rc != expect:
        raise AssertionError('whr inbox %s: exit %d, expected %d\n%s%s'
                             % (' '.join(args), rc, expect, out, err))
    return out, err


class Flow(threading.Thread):
    """Deliveries of PER_DELIVERY notifications, one after another, each
    with a new Id, until stopped; all must be answered 200."""

    def __init__(self, k):
        super().__init__(daemon=True)
        self.k, self.port = k, None
        self.acked = []
        self.error = None
        self.stopping = threading.Event()

    def run(self):
        try:
            while not self.stopping.is_set():
                did = '%02d%030d' % (self.k, len(self.acked))
                body = w.delivery(id=did, notifications=notifications(did))
                r = w.post(self.port, body, V1_SECRET)
                if r.status != 200:
                    raise AssertionError('answered %r' % r)
                self.acked.append(did)
                self.stopping.wait(0.005)
        except Exception as e:      # raised by stop()
            self.error = e

    @staticmethod
    def wait_for(flows, n):
        """Until @n more deliveries were acknowledged."""
        target = sum(len(f.acked) for f in flows) + n
        deadline = time.monotonic() + w.slow(30)
        while sum(len(f.acked) for f in flows) < target:
            for f in flows:
                if f.error is not None:
                    raise f.error
            if time.monotonic() > deadline:
                raise AssertionError('deliveries stopped flowing')
            time.sleep(0.01)

    def stop(self):
        self.stopping.set()
        self.join(w.slow(30))
        if self.error is not None:
            raise self.error


def leftovers(folder):
    return sorted(n for n in os.listdir(folder) if '.tmp-' in n)


class Backup(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix='whr-backup-')
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.data = os.path.join(self.tmp, 'data')

    def check_copy(self, path):
        """A whole inbox on its own: 0600, one file, intact, and every
        delivery in it has all its notifications. Returns the number of
        deliveries as whr inbox counts them in a folder holding it."""
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        folder = tempfile.mkdtemp(prefix='restored-', dir=self.tmp)
        os.link(path, os.path.join(folder, 'inbox.sqlite'))
        out, _ = inbox('stats', '--data-dir', folder, '--format', 'json')
        stats = json.loads(out)
        counts = stats['notifications']
        self.assertEqual(sum(counts.values()),
                         PER_DELIVERY * stats['deliveries'], stats)
        db = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
        try:
            self.assertEqual(db.execute('PRAGMA journal_mode').fetchone(),
                             ('delete',))
            self.assertEqual(db.execute('PRAGMA integrity_check')
                             .fetchall(), [('ok',)])
            broken = db.execute(
                'SELECT count(*) FROM deliveries d WHERE notifications !='
                ' (SELECT count(*) FROM notifications n'
                ' WHERE n.delivery_seq = d.seq)').fetchone()[0]
            self.assertEqual(broken, 0)
            self.assertEqual(db.execute('SELECT count(*) FROM deliveries')
                             .fetchone()[0], stats['deliveries'])
        finally:
            db.close()
        # Read where it is: no -wal or -shm was needed, or made.
        self.assertEqual(sorted(os.listdir(folder)), ['inbox.sqlite'])
        return stats['deliveries']

    def test_under_load_then_restored(self):
        flows = [Flow(k) for k in range(2)]
        copies, acked = [], []
        with w.Server(ARGS + ['--data-dir', self.data], env=ENV) as srv:
            for f in flows:
                f.port = srv.port
                f.start()
            try:
                for i in range(3):
                    # some more deliveries acknowledged since the last
                    # copy was taken
                    Flow.wait_for(flows, 10)
                    acked.append(sum(len(f.acked) for f in flows))
                    dest = os.path.join(self.tmp, 'copy-%d.sqlite' % i)
                    out, _ = inbox('backup', dest, '--data-dir', self.data)
                    self.assertRegex(out, r'^backed up \S+/inbox\.sqlite to '
                                          r'%s \(\d+\.\d MiB\)\n$' % dest)
                    copies.append(dest)
                during = sum(len(f.acked) for f in flows)
            finally:
                for f in flows:
                    f.stop()
            self.assertTrue(srv.running())
        self.assertEqual(leftovers(self.tmp), [])
        counts = [self.check_copy(c) for c in copies]
        # Taken as deliveries flowed: each copy has every delivery
        # acknowledged before it was begun, more than the copy before,
        # and none that was not yet being stored when the flow stopped.
        for before, count in zip(acked, counts):
            self.assertGreaterEqual(count, before)
        self.assertLess(counts[0], counts[1])
        self.assertLess(counts[1], counts[2])
        self.assertLessEqual(counts[2], during + len(flows))

        # Restored as docs/operations.md says, into a folder of its own:
        # whr serve starts on it and knows what it holds.
        restored = os.path.join(self.tmp, 'restored')
        os.mkdir(restored, 0o700)
        os.replace(copies[2], os.path.join(restored, 'inbox.sqlite'))
        db = sqlite3.connect(os.path.join(restored, 'inbox.sqlite'))
        old, dups = db.execute('SELECT delivery_id, (SELECT sum(duplicates)'
                               ' FROM deliveries) FROM deliveries ORDER BY'
                               ' seq LIMIT 1').fetchone()
        db.close()
        with w.Server(ARGS + ['--data-dir', restored], env=ENV) as srv:
            body = w.delivery(id=old, attempt=2,
                              notifications=notifications(old))
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            out, _ = inbox('stats', '--data-dir', restored, '--format',
                           'json')
            stats = json.loads(out)
            self.assertEqual(stats['deliveries'], counts[2])
            self.assertEqual(stats['duplicates'], dups + 1)

    def test_dest_is_never_replaced_without_force(self):
        with w.Server(ARGS + ['--data-dir', self.data], env=ENV) as srv:
            self.assertEqual(w.post(srv.port, w.delivery(
                notifications=notifications('x')), V1_SECRET).status, 200)
            dest = os.path.join(self.tmp, 'copy.sqlite')
            with open(dest, 'w') as f:
                f.write('keep me')
            os.chmod(dest, 0o644)
            rc, out, err = w.run_whr(['inbox', '--data-dir', self.data,
                                      'backup', dest])
            self.assertEqual((rc, out), (1, ''))
            self.assertEqual(err, 'whr inbox: %s exists: give --force to '
                                  'replace it\n' % dest)
            with open(dest) as f:
                self.assertEqual(f.read(), 'keep me')
            # A link there is not followed, nor replaced.
            link = os.path.join(self.tmp, 'link.sqlite')
            os.symlink(os.path.join(self.tmp, 'nowhere'), link)
            inbox('--data-dir', self.data, 'backup', link, expect=1)
            self.assertFalse(os.path.exists(os.path.join(self.tmp,
                                                         'nowhere')))

            out, _ = inbox('--format', 'json', '--data-dir', self.data,
                           'backup', '--force', dest)
            self.assertEqual(json.loads(out),
                             {'backup': dest, 'bytes': os.path.getsize(dest)})
            self.assertEqual(self.check_copy(dest), 1)

            # A failure leaves nothing behind: a folder in the way, a
            # folder that is not there.
            folder = os.path.join(self.tmp, 'a-folder')
            os.mkdir(folder)
            with open(os.path.join(folder, 'x'), 'w'):
                pass
            rc, out, err = w.run_whr(['inbox', 'backup', '--force', folder,
                                      '--data-dir', self.data])
            self.assertEqual(rc, 1, err)
            self.assertIn('cannot back up: cannot write %s' % folder, err)
            rc, out, err = w.run_whr(['inbox', 'backup', os.path.join(
                self.tmp, 'no', 'such.sqlite'), '--data-dir', self.data])
            self.assertEqual(rc, 1, err)
            self.assertIn('cannot create a file beside', err)
            self.assertEqual(leftovers(self.tmp), [])
            self.assertEqual(sorted(os.listdir(self.data)),
                             ['inbox.sqlite', 'inbox.sqlite-shm',
                              'inbox.sqlite-wal'])

    def test_usage(self):
        for args in (['backup'], ['backup', 'a', 'b'],
                     ['backup', '--nosuch', 'a']):
            with self.subTest(args=args):
                rc, out, err = w.run_whr(['inbox', '--data-dir', self.data,
                                          *args])
                self.assertEqual(rc, 2, err)
        rc, out, err = w.run_whr(['inbox', '--help'])
        self.assertIn('backup DEST [--force]', out)


if __name__ == '__main__':
    w.main()
