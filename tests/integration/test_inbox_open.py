"""Opening the inbox: its schema version, one server per folder, /readyz,
and the tables of transactional handlers (db_setup), whose failure leaves
whr running and answering 503 until they can be made."""
import os
import re
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402
from test_inbox import DataDir, ENV  # noqa: E402


class SchemaVersion(unittest.TestCase):
    def test_newer_schema_stops_start_up(self):
        data = DataDir.for_test(self)
        with data.recorder():
            pass
        with sqlite3.connect(os.path.join(data.path, 'inbox.sqlite')) as db:
            db.execute('PRAGMA user_version = 99')
        rc, out, err = w.run_whr(['serve', '--listen', '127.0.0.1:0',
                                  *data.args()], ENV)
        self.assertEqual(rc, 1, err)
        self.assertIn('schema version 99, newer than this whr knows (2)', err)


class OneServerPerFolder(unittest.TestCase):
    def test_second_server_on_a_folder_stops(self):
        # Two servers on one folder would both run its work: the second
        # says why and stops; the first goes on; once it is gone (even
        # killed) the folder is free.
        data = DataDir.for_test(self)
        first = w.Server(data.args(), env=ENV)
        try:
            rc, out, err = w.run_whr(['serve', '--listen', '127.0.0.1:0',
                                      *data.args()], ENV)
            self.assertEqual(rc, 1, err)
            self.assertIn('inbox %s: another whr serve uses this data '
                          'folder; stop it first, or give another '
                          '--data-dir' % data.path, err)
            self.assertEqual(w.post(first.port, w.delivery(),
                                    V1_SECRET).status, 200)
            first.kill()
        finally:
            first.cleanup()
        with w.Server(data.args(), env=ENV) as second:
            self.assertEqual(w.post(second.port, w.delivery(),
                                    V1_SECRET).status, 200)


class Readiness(unittest.TestCase):
    def test_readyz(self):
        data = DataDir.for_test(self)
        with w.Server(data.args(), env=ENV) as srv:
            r = w.request('GET', '/readyz', port=srv.port)
            self.assertEqual((r.status, r.body), (200, b'ready\n'))
            r = w.request('POST', '/readyz', port=srv.port)
            self.assertEqual(r.status, 405)


class HandlerTables(unittest.TestCase):
    """A transactional handler that cannot make its tables (a full disk,
    say): whr runs and answers 503 with the reason, tells it once, tries
    again every second, and opens the inbox once the tables are made."""

    def post(self, srv):
        return w.post(srv.port, w.delivery(notifications=[{'Action': 'a1'}]),
                      V1_SECRET)

    def test_told_once_then_the_inbox_opens(self):
        data = DataDir.for_test(self)
        # Fails at start and at the next attempts, one a second: time to
        # see the 503s before it opens.
        fails = min(10, max(3, round(w.slow(3))))
        env = data.env(WHR_RECORD_TX='1',
                       WHR_RECORD_TX_SETUP_FAIL=str(fails))
        why = 'handler tx could not prepare its tables'
        with data.recorder(env=env) as srv:
            r = self.post(srv)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.header('Retry-After'), '30')
            self.assertIn(why.encode(), r.body)
            r = w.request('GET', '/readyz', port=srv.port)
            self.assertEqual(r.status, 503)
            self.assertIn(why.encode(), r.body)
            srv.wait_log(r'info +inbox \S+ opened: ', timeout=fails + 5)
            self.assertEqual(self.post(srv).status, 200)
            self.assertEqual(w.request('GET', '/readyz',
                                       port=srv.port).status, 200)
            data.wait_states(done=1)
            log = srv.log()
        # Each line once over all the failures: the handler's, and whr's.
        self.assertEqual(log.count('recorder: tx cannot prepare its table'),
                         1, log)
        self.assertEqual(len(re.findall(r'error +' + why + r' \(inbox ',
                                        log)), 1, log)
        self.assertEqual(log.count('the inbox cannot take writes'), 1, log)
        self.assertEqual(data.query('SELECT count(*) FROM recorder_applied'),
                         [(1,)])


if __name__ == '__main__':
    unittest.main(verbosity=2)
