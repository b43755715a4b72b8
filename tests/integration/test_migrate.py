"""whr migrate (issue 15): a data folder's inbox and enrollment tracker
moved into an empty PostgreSQL database (a throwaway cluster,
whrtest/postgres.py), which whr serve --database then runs on as if it
had always been there: the same whr inbox and whr enrollments output, a
resend of a delivery of the folder recognised, new deliveries numbered
after the old ones. A database that holds an inbox
already is refused, and nothing is copied. Suite postgres: skipped
without PostgreSQL, except under CI=true."""

import json
import os
import shutil
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET, postgres  # noqa: E402
import test_enrollments_cli as enr  # noqa: E402

SECRETS = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}


class Migrate(postgres.ClusterTestCase):
    tmp_prefix = 'whr-migrate-'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = os.path.join(cls.tmp.name, 'data')
        # A folder's inbox: the tracker's events, a notification that
        # fails for good (dead) and one whose handler is left to retry,
        # a delivery without an Id, a resend.
        cls.ids = []
        with w.Server(['--data-dir', cls.data,
                       '--handler', "exec:CourseStarted=sh -c 'exit 75'",
                       '--handler', 'exec:CourseUnenrollment=false',
                       '--retry-delay', '1h'], env=enr.ENV) as srv:
            for i, step in enumerate(enr.STEPS):
                did = 'folder-%d' % i
                body = w.delivery(id=did,
                                  notifications=[enr.notification(*step)])
                cls.ids.append(did)
                assert w.post(srv.port, body, enr.SECRET).status == 200
            # A title beyond ASCII, matched without regard to case.
            body = w.delivery(id='folder-unicode', notifications=[
                enr.notification('CourseEnrollment', dict(
                    enr.COURSE_Y, Id='C-ÆØÅ', Title='Ærø Øvelse'),
                    [enr.LAERKE], '2024-05-08T10:00:00Z')])
            assert w.post(srv.port, body, enr.SECRET).status == 200
            body = w.delivery(id=None, notifications=[{'Action': 'x'}])
            assert w.post(srv.port, body, enr.SECRET).status == 200
            body = w.delivery(id=cls.ids[0], attempt=2, notifications=[
                enr.notification(*enr.STEPS[0])])
            assert w.post(srv.port, body, enr.SECRET).status == 200
            # Settled as far as it goes: the retries are an hour away,
            # and the later work of their keys waits for them.
            deadline = time.monotonic() + w.slow(10)
            last = None
            while True:
                now = cls.folder_stats(cls)['notifications']
                if (now == last and now['retrying'] == 2 and
                        now['dead'] == 1):
                    break
                assert time.monotonic() < deadline, now
                last = now
                time.sleep(0.3)
            srv.stop()

    def folder_stats(self):
        rc, out, err = w.run_whr(['inbox', '--data-dir', self.data,
                                  '--format', 'json', 'stats'])
        assert rc == 0, err
        return json.loads(out)

    def database(self, name):
        return ['--database', self.pg.url(False, database=name)]

    def env(self):
        return {'PGPASSFILE': self.passfile}

    def run_both(self, args, name):
        """whr ARGS on the folder and on database @name: both outputs."""
        outs = []
        for where, env in ((['--data-dir', self.data], None),
                           (self.database(name), self.env())):
            rc, out, err = w.run_whr([*args, *where], env=env, timeout=30)
            self.assertEqual(rc, 0, err)
            outs.append(out)
        return outs

    def migrate(self, name, expect=0):
        rc, out, err = w.run_whr(['migrate', '--data-dir', self.data,
                                  *self.database(name)], env=self.env(),
                                 timeout=60)
        self.assertEqual(rc, expect, err)
        self.assertNotIn(self.pg.password, out + err)
        return out, err

    def test_copy_then_serve(self):
        self.pg.psql('CREATE DATABASE moved OWNER whr')
        out, _ = self.migrate('moved')
        stats = self.folder_stats()
        self.assertIn('copied %d deliveries (%d notifications, '
                      % (stats['deliveries'],
                         sum(stats['notifications'].values())), out)
        # whr inbox and whr enrollments say the same of both.
        laerke = enr.LAERKE['Email'].upper()
        for args in (['inbox', '--format', 'json', 'list'],
                     ['inbox', '--format', 'json', 'show', self.ids[2]],
                     ['enrollments', '--format', 'csv'],
                     ['enrollments', '--all-cycles', '--format', 'json'],
                     ['enrollments', '--course', 'fire SAFETY basics',
                      '--state', 'completed'],
                     ['enrollments', '--course', enr.COURSE_X['Id'].upper(),
                      '--learner', laerke],
                     ['enrollments', '--course', 'ærø øvelse'],
                     ['enrollments', '--course', 'c-æøå'],
                     ['enrollments', '--since', '2024-05-04', '--until',
                      '2024-05-07T13:00', '--limit', '2'],
                     ['enrollments', 'summary', '--format', 'csv'],
                     ['enrollments', 'summary', '--course', 'ÆRØ ØVELSE'],
                     ['enrollments', 'history', '--format', 'csv'],
                     ['enrollments', 'history', '--learner', laerke,
                      '--limit', '3', '--format', 'json']):
            folder, moved = self.run_both(args, 'moved')
            self.assertEqual(folder, moved, args)
            if 'ærø øvelse' in args or 'ÆRØ ØVELSE' in args:
                self.assertIn('Ærø Øvelse', moved)
        folder, moved = self.run_both(['inbox', '--format', 'json',
                                       'stats'], 'moved')
        folder, moved = json.loads(folder), json.loads(moved)
        for stats_of in (folder, moved):
            stats_of.pop('inbox')
            stats_of.pop('bytes')
            # Actions as frequent as each other come in either order.
            stats_of['actions'].sort(key=lambda a: (-a['total'],
                                                    a['action'] or ''))
        self.assertEqual(folder, moved)

        # whr serve on the database: a resend of the folder's delivery
        # is a duplicate, and a new one is numbered after the old ones.
        url_file = self.pg.url_file(self.tmp.name, 'moved-url',
                                    database='moved')
        with w.Server([], env=dict(enr.ENV, WHR_DATABASE_FILE=url_file),
                      secrets=(self.pg.password,)) as srv:
            body = w.delivery(id=self.ids[1], attempt=3, notifications=[
                enr.notification(*enr.STEPS[1])])
            self.assertEqual(w.post(srv.port, body, enr.SECRET).status, 200)
            body = w.delivery(id='after-the-move', notifications=[
                enr.notification('CourseStarted', enr.COURSE_X,
                                 [enr.MEGAN], '2024-05-06T09:00:00Z')])
            self.assertEqual(w.post(srv.port, body, enr.SECRET).status, 200)
            srv.stop()
        rc, out, err = w.run_whr(['inbox', *self.database('moved'),
                                  '--format', 'json', 'show',
                                  'after-the-move'], env=self.env())
        self.assertEqual(rc, 0, err)
        self.assertGreater(json.loads(out)['seq'], stats['deliveries'])
        self.assertEqual(self.pg.psql(
            "SELECT duplicates FROM deliveries WHERE delivery_id = '%s'"
            % self.ids[1], database='moved'), '1')

    def test_open_work_with_an_empty_keys_column(self):
        # A notification stored through the library with one key, an
        # empty one, has an empty keys column in SQLite. Copied, it gets
        # its delivery's key, as PostgreSQL's ingest gives it, so that
        # claims (which find open work by its keys) run it.
        folder = os.path.join(self.tmp.name, 'empty-key')
        shutil.copytree(self.data, folder)
        with sqlite3.connect(os.path.join(folder, 'inbox.sqlite')) as db:
            nid, seq = db.execute(
                "SELECT id, delivery_seq FROM notifications"
                " WHERE state = 'retrying' ORDER BY id LIMIT 1").fetchone()
            db.execute("UPDATE notifications SET keys = '', next_at = 0"
                       " WHERE id = ?", (nid,))
        self.pg.psql('CREATE DATABASE emptykey OWNER whr')
        rc, out, err = w.run_whr(['migrate', '--data-dir', folder,
                                  *self.database('emptykey')],
                                 env=self.env(), timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.pg.psql(
            "SELECT n.keys || ' ' || k.key FROM notifications n"
            " JOIN notification_keys k ON k.notification_id = n.id"
            " WHERE n.id = %d" % nid, database='emptykey'),
            'd:%d d:%d' % (seq, seq))
        url_file = self.pg.url_file(self.tmp.name, 'emptykey-url',
                                    database='emptykey')
        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=dict(enr.ENV, WHR_DATABASE_FILE=url_file),
                      secrets=(self.pg.password,)) as srv:
            w.wait_until('notification %d done' % nid, lambda: self.pg.psql(
                "SELECT state FROM notifications WHERE id = %d" % nid,
                database='emptykey') == 'done', timeout=20)
            srv.stop()

    def test_refuses_a_database_in_use(self):
        self.pg.psql('CREATE DATABASE used OWNER whr')
        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=dict(SECRETS, WHR_DATABASE=self.pg.url(
                          database='used')),
                      secrets=(self.pg.password,)) as srv:
            self.assertEqual(w.post(srv.port, w.delivery(),
                                    V1_SECRET).status, 200)
            srv.stop()
        _, err = self.migrate('used', expect=1)
        self.assertIn('nothing copied', err)
        self.assertIn('deliveries already', err)
        self.assertEqual(self.pg.psql('SELECT count(*) FROM deliveries',
                                      database='used'), '1')
        self.assertEqual(self.pg.psql(
            "SELECT to_regclass('courses') IS NULL", database='used'), 't')

    def test_usage(self):
        rc, out, err = w.run_whr(['migrate', '--help'])
        self.assertEqual((rc, err), (0, ''))
        self.assertIn('Usage: whr migrate', out)
        for args, message in (
                (['--data-dir', self.data], 'no database'),
                (['--data-dir', self.data, '--database', self.pg.url()],
                 'no password in --database'),
                (['--data-dir', self.pg.url(False)], 'needs a folder'),
                (['--nosuch'], "unknown option '--nosuch'"),
                (['extra'], "unexpected argument 'extra'")):
            rc, out, err = w.run_whr(['migrate', *args])
            self.assertEqual(rc, 2, args)
            self.assertIn(message, err)
            self.assertNotIn(self.pg.password, out + err)


if __name__ == '__main__':
    w.main()
