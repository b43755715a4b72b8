"""Transactional handlers: exactly once in the inbox's own database, run
in the transaction that stores the delivery when their order allows, and
held to that transaction (they cannot end it)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402
from test_inbox import (DataDir, DataDirTestCase, calls,  # noqa: E402
                        enrollment)


class ExactlyOnce(DataDirTestCase):
    def test_transactional_handler_applies_once(self):
        env = self.data.env(WHR_RECORD_TX='1')
        with self.data.recorder('--retry-delay', '20ms', env=env) as srv:
            body = w.delivery(id='7' * 32, notifications=[
                {'Action': 'a1'}, {'Action': 'TxRetry'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.data.wait_states(done=2)
            # Sent again: a duplicate, not applied again.
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
        rows = self.data.query('SELECT delivery, idx, applied FROM '
                               'recorder_applied ORDER BY idx')
        # TxRetry's first write was rolled back with its retry.
        self.assertEqual(rows, [('7' * 32, 0, 1), ('7' * 32, 1, 1)])
        outcomes = dict(self.data.query(
            "SELECT n.idx, o.runs FROM outcomes o JOIN notifications n"
            " ON n.id = o.notification_id WHERE o.handler = 'tx'"))
        self.assertEqual(outcomes, {0: 1, 1: 2})


class DeliveryTransaction(DataDirTestCase):
    """A new notification whose first handler is transactional runs it
    in the transaction that stores the delivery, unless older open work
    shares its learner and course: then it waits its turn."""

    def applied(self, delivery):
        return self.data.query('SELECT idx, applied FROM recorder_applied'
                               ' WHERE delivery = ?', delivery)

    def test_applied_before_the_200(self):
        # One worker, kept busy by a slow handler: what needed a worker
        # could not be applied by the time of the 200.
        env = self.data.env(WHR_RECORD_TX='first', WHR_RECORD_SLEEP_MS='200')
        ids = ['%032x' % (0xa00 + i) for i in range(5)]
        with self.data.recorder('--workers', '1', env=env) as srv:
            body = w.delivery(notifications=[
                enrollment('course-9', 'busy-%d' % i, action='Busy')
                for i in range(3)])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            for i, did in enumerate(ids):
                # No handler of its own: tx, the first catch-all, first.
                body = w.delivery(id=did, notifications=[
                    enrollment('course-1', 'learner-%d' % i,
                               action='CourseStarted')])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
                # No wait: committed with the delivery, before its 200.
                self.assertEqual(self.applied(did), [(0, 1)], did)
            # The worker handlers after it still run, once each.
            recs = srv.records((3 + 5) * 2, timeout=10 + w.slow(2))
            self.data.wait_states(done=8)
        self.assertEqual(sorted(c for c in calls(recs) if c[1] in ids),
                         sorted((h, did, 0) for did in ids
                                for h in ('all', 'all2')))
        self.assertEqual(self.data.query(
            "SELECT count(*), sum(runs) FROM outcomes WHERE handler = 'tx'"),
            [(8, 8)])

    def test_waits_behind_older_open_work_of_its_learner(self):
        env = self.data.env(WHR_RECORD_TX='first')
        delay = '%ds' % max(2, w.slow(2))
        first, same, other = ('%032x' % n for n in (0xb1, 0xb2, 0xb3))
        with self.data.recorder('--retry-delay', delay, env=env) as srv:
            # tx asks to retry TxRetry's first run: it stays open.
            body = w.delivery(id=first, notifications=[
                enrollment('course-1', 'ana', action='TxRetry')])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            # Its run ends once the worker handlers after tx are done
            # too (slow under valgrind): the second comes after that.
            deadline = time.monotonic() + w.slow(10)
            while self.data.query('SELECT state FROM notifications '
                                  'WHERE id = 1') != [('retrying',)]:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            body = w.delivery(id=same, notifications=[
                enrollment('course-1', 'ana', action='CourseStarted')])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.assertEqual(self.data.query(
                'SELECT state FROM notifications WHERE id = 1'),
                [('retrying',)], 'the first must still be open')
            # Not run ahead of the first, which has ana in course-1 too.
            self.assertEqual(self.applied(same), [])
            # Another learner's does not wait.
            body = w.delivery(id=other, notifications=[
                enrollment('course-1', 'bo', action='CourseStarted')])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.assertEqual(self.applied(other), [(0, 1)])
            self.data.wait_states(done=3, timeout=10 + w.slow(2))
        self.assertEqual(self.applied(first), [(0, 1)])
        self.assertEqual(self.applied(same), [(0, 1)])
        # tx applied the first (on its second run) before the second.
        order = [d for d, in self.data.query(
            "SELECT d.delivery_id FROM outcomes o"
            " JOIN notifications n ON n.id = o.notification_id"
            " JOIN deliveries d ON d.seq = n.delivery_seq"
            " WHERE o.handler = 'tx' AND d.delivery_id <> ?"
            " ORDER BY o.updated_at", other)]
        self.assertEqual(order, [first, same])


class TransactionGuard(unittest.TestCase):
    def test_a_handler_cannot_end_the_inbox_transaction(self):
        # tx runs in the transaction that stores the delivery; its
        # COMMIT, ROLLBACK, RELEASE of whr's savepoint and BEGIN are all
        # refused, so the delivery and its done mark commit together.
        data = DataDir.for_test(self)
        did = '%032x' % 0xc0
        env = data.env(WHR_RECORD_TX='first', WHR_RECORD_TX_SETUP_COMMIT='1')
        with data.recorder(env=env) as srv:
            # Its db_setup is held to the same.
            srv.wait_log(r'recorder: setup COMMIT: not authorized')
            body = w.delivery(id=did, notifications=[
                enrollment('course-1', 'ana', action='TxCommit')])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            for sql in ('COMMIT', 'ROLLBACK', 'RELEASE whr_handler',
                        'BEGIN'):
                srv.wait_log(r'recorder: %s: not authorized' % sql)
            data.wait_states(done=1)
        self.assertEqual(data.query('SELECT applied FROM recorder_applied'
                                    ' WHERE delivery = ?', did), [(1,)])
        self.assertEqual(data.query("SELECT result, runs FROM outcomes"
                                    " WHERE handler = 'tx'"), [('done', 1)])


    def test_a_transaction_sqlite_ended_fails_the_batch(self):
        # On its first run tx makes SQLite roll the transaction back
        # (ON CONFLICT ROLLBACK), then writes: that write must not commit
        # on its own. The batch fails (503); the resend applies it once.
        data = DataDir.for_test(self)
        did = '%032x' % 0xc1
        body = w.delivery(id=did, notifications=[
            enrollment('course-1', 'ana', action='TxAbort')])
        with data.recorder(env=data.env(WHR_RECORD_TX='first')) as srv:
            r = w.post(srv.port, body, V1_SECRET)
            self.assertEqual(r.status, 503, r)
            self.assertIn(b'the transaction ended while handler tx ran',
                          r.body)
            self.assertEqual(data.query('SELECT count(*) FROM deliveries'),
                             [(0,)])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            data.wait_states(done=1)
        self.assertEqual(data.query('SELECT delivery, applied FROM'
                                    ' recorder_applied'), [(did, 1)])


if __name__ == '__main__':
    unittest.main(verbosity=2)
