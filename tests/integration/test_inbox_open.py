"""Opening the inbox: its schema version and /readyz."""
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from test_inbox import DataDir, ENV  # noqa: E402


class SchemaVersion(unittest.TestCase):
    def test_newer_schema_stops_start_up(self):
        data = DataDir()
        self.addCleanup(data.cleanup)
        with w.Server(data.args(), program='recorder', env=data.env()):
            pass
        with sqlite3.connect(os.path.join(data.path, 'inbox.sqlite')) as db:
            db.execute('PRAGMA user_version = 99')
        rc, out, err = w.run_whr(['serve', '--listen', '127.0.0.1:0',
                                  *data.args()], ENV)
        self.assertEqual(rc, 1, err)
        self.assertIn('schema version 99, newer than this whr knows (1)', err)


class Readiness(unittest.TestCase):
    def test_readyz(self):
        data = DataDir()
        self.addCleanup(data.cleanup)
        with w.Server(data.args(), env=ENV) as srv:
            r = w.request('GET', '/readyz', port=srv.port)
            self.assertEqual((r.status, r.body), (200, b'ready\n'))
            r = w.request('POST', '/readyz', port=srv.port)
            self.assertEqual(r.status, 405)


if __name__ == '__main__':
    unittest.main(verbosity=2)
