"""The enrollment tracker, end to end: Learn365 deliveries through the real
`whr serve` (the tracker is on by default) into the tables of the inbox's
SQLite file; out-of-order and duplicate events, several users, unenroll
and re-enroll, approval, course events, bad events, and how it is turned
off or placed."""

import copy
import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
SAMPLES = os.path.join(os.environ.get('WHR_SOURCE_ROOT', '.'), 'samples')
ACTIONS = ['CourseEnrollment', 'CourseUnenrollment', 'CourseStarted',
           'CourseCompleted', 'CoursePublished', 'CourseUnpublished',
           'EnrollmentApprovalRequest']
COURSE = '93e39bfc-6336-4098-820f-8608318597b1'


def sample(action):
    """The sample delivery's first notification, as a dict."""
    with open(os.path.join(SAMPLES, action + '.json'), encoding='utf-8') as f:
        return json.load(f)['Notifications'][0]


def event(action, at, course='c-1', users=('u-1',), **more):
    """An enrollment-type notification at time @at (ISO text)."""
    n = {'Action': action, 'EnrollmentStatus': 0,
         'EnrollmentStatusText': action,
         'Course': {'Id': course, 'Title': 'Course ' + course,
                    'Published': True},
         'Users': [{'Id': u, 'Email': u + '@example.com', 'Title': u.upper(),
                    'EnrollmentId': 'e-' + u} for u in users],
         'TimeStamp': at}
    n.update(more)
    return n


def us(iso):
    """Microseconds since the epoch of a UTC ISO text (seconds precision
    plus an optional fraction), computed here independently."""
    from datetime import datetime, timezone
    t = datetime.fromisoformat(iso.replace('Z', '+00:00'))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1000000 + \
        delta.microseconds


class Tracker:
    """A whr serve with a data folder, and ways to read its tables."""

    def __init__(self, *args):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-enr-')
        self.data = os.path.join(self.tmp.name, 'data')
        self.srv = w.Server(['--data-dir', self.data, '--retry-delay', '50ms',
                             *args], env=ENV)

    def send(self, *notifications, id=w.RANDOM, expect=200):
        body = w.delivery(id=id, notifications=list(notifications))
        r = w.post(self.srv.port, body, V1_SECRET)
        if r.status != expect:
            raise AssertionError('status %d: %r' % (r.status, r.body))
        return json.loads(body)['Id'] if id is not None else None

    def events(self, *steps):
        """Send each (Action, TimeStamp) as a delivery of its own, in that
        order, then settle()."""
        for action, at in steps:
            self.send(event(action, at))
        self.settle()

    def query(self, sql, *args):
        db = sqlite3.connect('file:%s/inbox.sqlite?mode=ro' % self.data,
                             uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql, args).fetchall()]
        finally:
            db.close()

    def settle(self, timeout=10):
        """Wait until no notification is pending or retrying."""
        deadline = time.monotonic() + w.slow(timeout)
        while True:
            rows = self.query("SELECT count(*) AS n FROM notifications "
                              "WHERE state IN ('pending', 'retrying')")
            if rows[0]['n'] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError('work still open after %.1f s'
                                     % w.slow(timeout))
            time.sleep(0.02)

    def states(self):
        return {r['state']: r['n'] for r in self.query(
            'SELECT state, count(*) AS n FROM notifications GROUP BY state')}

    def enrollments(self, course='c-1', learner='u-1'):
        return self.query('SELECT * FROM enrollments WHERE course_id = ? '
                          'AND learner_id = ? ORDER BY cycle', course, learner)

    def history(self, course='c-1', learner='u-1'):
        """The events of a learner (None: of the course) in a course, in
        the order they arrived."""
        return self.query('SELECT * FROM enrollment_events WHERE '
                          'course_id = ? AND learner_id = ? '
                          'ORDER BY received_at, notification_index',
                          course, learner if learner is not None else '')

    def reasons(self):
        return [r['error'] for r in self.query(
            "SELECT error FROM notifications WHERE state = 'dead' "
            'ORDER BY id')]

    def close(self):
        if not self.srv.checked:
            self.srv.stop()
        self.tmp.cleanup()


class TrackerTestCase(unittest.TestCase):
    args = ()

    def setUp(self):
        self.t = Tracker(*self.args)
        self.addCleanup(self.t.close)


class Samples(TrackerTestCase):

    def test_every_sample_reaches_the_tables(self):
        for action in ACTIONS:
            self.t.send(sample(action))
        self.t.settle()
        self.assertEqual(self.t.states(), {'done': len(ACTIONS)})
        # CourseEnrollment's course and both its learners, UTF-8 intact.
        course = self.t.query('SELECT * FROM courses WHERE course_id = ?',
                              COURSE)[0]
        self.assertEqual(course['title'], 'Fire Safety Basics')
        self.assertEqual(course['course_type'], 'Course')
        self.assertEqual(course['published'], 1)
        learners = {r['email']: r for r in self.t.query(
            'SELECT * FROM learners')}
        self.assertEqual(learners['laerke.ostergaard@contoso.com']['name'],
                         'Lærke Østergaard')
        self.assertEqual(learners['laerke.ostergaard@contoso.com']
                         ['department'], 'Sales (Nordics)')
        # Every enrollment-type sample left one history row per user.
        actions = {}
        for r in self.t.query('SELECT action, count(*) AS n FROM '
                              'enrollment_events GROUP BY action'):
            actions[r['action']] = r['n']
        for action in ('CourseEnrollment', 'CourseUnenrollment',
                       'CourseStarted', 'CourseCompleted',
                       'EnrollmentApprovalRequest',
                       'CoursePublished', 'CourseUnpublished'):
            users = sample(action).get('Users')
            self.assertEqual(actions.get(action),
                             len(users) if users is not None else 1, action)
        # Each enrollment-type sample moved each of its users to its
        # state, dated by its TimeStamp.
        steps = {'EnrollmentApprovalRequest': ('approval_requested',
                                               'approval_requested_at'),
                 'CourseEnrollment': ('enrolled', 'enrolled_at'),
                 'CourseStarted': ('started', 'started_at'),
                 'CourseCompleted': ('completed', 'completed_at'),
                 'CourseUnenrollment': ('unenrolled', 'unenrolled_at')}
        for action, (state, column) in steps.items():
            n = sample(action)
            self.assertTrue(n['Users'], action)
            for user in n['Users']:
                rows = self.t.enrollments(n['Course']['Id'], user['Id'])
                self.assertEqual(len(rows), 1, (action, user['Id']))
                self.assertEqual(rows[0]['state'], state, action)
                self.assertEqual(rows[0][column], us(n['TimeStamp']),
                                 action)
                self.assertEqual(rows[0]['enrollment_id'],
                                 user.get('EnrollmentId'), action)
        # The course events' courses, with their flag and time.
        for action, flag in (('CoursePublished', 1),
                             ('CourseUnpublished', 0)):
            n = sample(action)
            row = self.t.query('SELECT * FROM courses WHERE course_id = ?',
                               n['Id'])[0]
            self.assertEqual(row['title'], n['Title'])
            self.assertEqual(row['url'], n['Url'])
            self.assertEqual(row['site_id'], n['SiteId'])
            self.assertEqual(row['published'], flag)
            history = [(h['action'], h['event_at'])
                       for h in self.t.history(n['Id'], None)]
            self.assertEqual(history, [(action, us(n['TimeStamp']))])

    def test_several_users_in_one_event(self):
        n = sample('CourseEnrollment')
        self.t.send(n)
        self.t.settle()
        rows = self.t.query('SELECT learner_id, state, enrolled_at, '
                            'enrollment_id FROM enrollments '
                            'WHERE course_id = ? ORDER BY learner_id',
                            COURSE)
        self.assertEqual(len(rows), len(n['Users']))
        for row, user in zip(rows, sorted(n['Users'],
                                          key=lambda u: u['Id'])):
            self.assertEqual(row['learner_id'], user['Id'])
            self.assertEqual(row['state'], 'enrolled')
            self.assertEqual(row['enrolled_at'], us(n['TimeStamp']))
            self.assertEqual(row['enrollment_id'], user['EnrollmentId'])


class Lifecycle(TrackerTestCase):

    def test_approval_enrolled_started_completed(self):
        steps = [('EnrollmentApprovalRequest', '2024-05-01T09:00:00Z',
                  'approval_requested', 'approval_requested_at'),
                 ('CourseEnrollment', '2024-05-01T10:00:00.5Z', 'enrolled',
                  'enrolled_at'),
                 ('CourseStarted', '2024-05-02T08:30:00+02:00', 'started',
                  'started_at'),
                 ('CourseCompleted', '2024-05-09T17:45:10.123456Z',
                  'completed', 'completed_at')]
        for action, at, state, column in steps:
            self.t.events((action, at))
            row, = self.t.enrollments()
            self.assertEqual(row['state'], state)
            self.assertEqual(row[column], us(at))
            self.assertEqual(row['cycle'], 1)
        row, = self.t.enrollments()
        for action, at, state, column in steps:
            self.assertEqual(row[column], us(at), column)
        self.assertEqual([h['effect'] for h in self.t.history()],
                         ['applied'] * 4)

    def test_out_of_order_never_moves_backwards(self):
        self.t.events(
            ('CourseEnrollment', '2024-05-01T10:00:00Z'),
            ('CourseCompleted', '2024-05-03T10:00:00Z'))
        self.t.events(
            # A retried CourseStarted (a new delivery) after the completion.
            ('CourseStarted', '2024-05-02T10:00:00Z'),
            # And a copy of the enrollment, older than what we know.
            ('CourseEnrollment', '2024-05-01T10:00:00Z'))
        row, = self.t.enrollments()
        self.assertEqual(row['state'], 'completed')
        self.assertEqual(row['started_at'], us('2024-05-02T10:00:00Z'))
        self.assertEqual(row['updated_at'], us('2024-05-03T10:00:00Z'))
        self.assertEqual([(h['action'], h['effect'])
                          for h in self.t.history()],
                         [('CourseEnrollment', 'applied'),
                          ('CourseCompleted', 'applied'),
                          ('CourseStarted', 'applied'),
                          ('CourseEnrollment', 'stale')])

    def test_duplicate_delivery_and_replay_count_once(self):
        id = self.t.send(event('CourseCompleted', '2024-05-03T10:00:00Z'))
        self.t.send(event('CourseCompleted', '2024-05-03T10:00:00Z'), id=id)
        self.t.settle()
        self.assertEqual(len(self.t.history()), 1)
        rc, out, err = w.run_whr(['inbox', '--data-dir', self.t.data,
                                  'replay', id, '--all-handlers'])
        self.assertEqual(rc, 0, err)
        time.sleep(0.05)
        self.t.settle()
        self.assertEqual(len(self.t.history()), 1)
        row, = self.t.enrollments()
        self.assertEqual(row['state'], 'completed')
        # It did run again: the replay left it pending with no runs (a
        # replay starts the count over), and it is done after one.
        note, = self.t.query('SELECT runs, state FROM notifications')
        self.assertEqual((note['runs'], note['state']), (1, 'done'))

    def test_unenroll_and_reenroll_keep_history(self):
        self.t.events(
            ('CourseEnrollment', '2024-05-01T10:00:00Z'),
            ('CourseStarted', '2024-05-02T10:00:00Z'),
            ('CourseUnenrollment', '2024-05-03T10:00:00Z'))
        row, = self.t.enrollments()
        self.assertEqual(row['state'], 'unenrolled')
        self.assertEqual(row['unenrolled_at'], us('2024-05-03T10:00:00Z'))
        self.t.events(('CourseEnrollment', '2024-06-01T10:00:00Z'))
        old, new = self.t.enrollments()
        self.assertEqual((old['cycle'], old['state']), (1, 'unenrolled'))
        self.assertEqual(old['started_at'], us('2024-05-02T10:00:00Z'))
        self.assertEqual((new['cycle'], new['state']), (2, 'enrolled'))
        self.assertEqual(new['enrolled_at'], us('2024-06-01T10:00:00Z'))
        self.assertIsNone(new['started_at'])
        # A late event of the first cycle goes to the first cycle, and
        # being the earlier start, dates it.
        self.t.events(('CourseStarted', '2024-05-02T09:00:00Z'))
        old, new = self.t.enrollments()
        self.assertEqual(new['state'], 'enrolled')
        self.assertEqual(old['started_at'], us('2024-05-02T09:00:00Z'))
        self.assertEqual([(h['cycle'], h['effect'])
                          for h in self.t.history()],
                         [(1, 'applied'), (1, 'stale'), (1, 'applied'),
                          (2, 'applied'), (1, 'applied')])

    def test_a_late_unenrollment_goes_where_its_time_puts_it(self):
        self.t.events(
            ('CourseEnrollment', '2024-05-01T10:00:00Z'),
            ('CourseStarted', '2024-05-05T10:00:00Z'))
        row, = self.t.enrollments()
        self.assertEqual(row['state'], 'started')
        # Unenrolled on the 4th, started again on the 5th: two cycles.
        self.t.events(('CourseUnenrollment', '2024-05-04T10:00:00Z'))
        old, new = self.t.enrollments()
        self.assertEqual((old['state'], old['unenrolled_at']),
                         ('unenrolled', us('2024-05-04T10:00:00Z')))
        self.assertEqual(old['enrolled_at'], us('2024-05-01T10:00:00Z'))
        self.assertIsNone(old['started_at'])
        self.assertEqual((new['cycle'], new['state'], new['started_at']),
                         (2, 'started', us('2024-05-05T10:00:00Z')))
        self.assertEqual([(h['cycle'], h['effect'])
                          for h in self.t.history()],
                         [(1, 'applied'), (2, 'applied'), (1, 'applied')])

    def test_any_arrival_order_gives_the_same_tables(self):
        """The review's case: a retried unenrollment arriving after the
        re-enrollment; and every other order of the same events."""
        import itertools
        steps = [('CourseEnrollment', '2024-05-01T09:00:00Z'),
                 ('CourseUnenrollment', '2024-05-01T10:00:00Z'),
                 ('CourseEnrollment', '2024-05-01T10:20:00Z'),
                 ('CourseStarted', '2024-05-02T08:00:00Z'),
                 ('CourseCompleted', '2024-05-03T08:00:00Z')]
        orders = list(itertools.permutations(range(len(steps))))
        rng = random.Random(5)
        picked = [orders[0], orders[-1]] + rng.sample(orders, 4)
        results = []
        for k, order in enumerate(picked):
            learner = 'p-%d' % k
            for i in order:
                action, at = steps[i]
                self.t.send(event(action, at, course='perm',
                                  users=(learner,)))
                self.t.settle()
            rows = self.t.enrollments('perm', learner)
            results.append([(r['cycle'], r['state'], r['enrolled_at'],
                             r['started_at'], r['completed_at'],
                             r['unenrolled_at'], r['updated_at'])
                            for r in rows])
            effects = sorted((h['event_at'], h['cycle'], h['effect'])
                             for h in self.t.history('perm', learner))
            results[-1].append(effects)
        for r in results[1:]:
            self.assertEqual(r, results[0])
        first, second = results[0][:2]
        self.assertEqual(first[:2], (1, 'unenrolled'))
        self.assertEqual(second[:2], (2, 'completed'))
        self.assertEqual(second[2], us('2024-05-01T10:20:00Z'))

    def test_the_same_learner_in_two_courses(self):
        self.t.send(event('CourseEnrollment', '2024-05-01T10:00:00Z',
                          course='c-1'),
                    event('CourseCompleted', '2024-05-02T10:00:00Z',
                          course='c-2'))
        self.t.settle()
        self.assertEqual(self.t.enrollments('c-1')[0]['state'], 'enrolled')
        self.assertEqual(self.t.enrollments('c-2')[0]['state'], 'completed')
        self.assertEqual(len(self.t.query('SELECT * FROM learners')), 1)

    def test_ids_compare_without_case_and_missing_time_is_arrival(self):
        before = int(time.time() * 1e6)
        n = event('CourseEnrollment', None, course='C-Upper', users=('U-1',))
        del n['TimeStamp']
        self.t.send(n)
        self.t.send(event('CourseStarted', '2030-01-01T00:00:00Z',
                          course='c-upper', users=('u-1',)))
        self.t.settle()
        rows = self.t.query('SELECT * FROM enrollments')
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]['state'], 'started')
        self.assertGreaterEqual(rows[0]['enrolled_at'], before)
        self.assertLessEqual(rows[0]['enrolled_at'],
                             int(time.time() * 1e6))


class CourseEvents(TrackerTestCase):

    def course(self, action, at, **more):
        n = {'Action': action, 'Id': 'k-1', 'Title': 'Kitchen Hygiene',
             'Url': 'https://example.com/k', 'CourseType': 'Course',
             'SiteId': 's', 'WebId': 'w', 'TimeStamp': at}
        n.update(more)
        return n

    def row(self):
        return self.t.query("SELECT * FROM courses WHERE course_id = 'k-1'")[0]

    def test_published_unpublished_by_time(self):
        self.t.send(self.course('CourseCreated', '2024-01-01T00:00:00Z',
                                Published=False))
        self.t.send(self.course('CoursePublished', '2024-01-02T00:00:00Z',
                                Published=True))
        self.t.settle()
        self.assertEqual(self.row()['published'], 1)
        self.assertEqual(self.row()['created_at'],
                         us('2024-01-01T00:00:00Z'))
        self.t.send(self.course('CourseUnpublished', '2024-01-03T00:00:00Z',
                                Title='Kitchen Hygiene (old)'))
        self.t.settle()
        self.assertEqual(self.row()['published'], 0)
        self.assertEqual(self.row()['title'], 'Kitchen Hygiene (old)')
        # An older publication arriving late changes nothing.
        self.t.send(self.course('CoursePublished', '2024-01-02T12:00:00Z'))
        self.t.settle()
        self.assertEqual(self.row()['published'], 0)
        self.assertEqual(self.t.history('k-1', None)[-1]['effect'], 'stale')
        self.t.send(self.course('CourseDeleted', '2024-02-01T00:00:00Z'))
        self.t.settle()
        self.assertEqual(self.row()['deleted_at'], us('2024-02-01T00:00:00Z'))
        self.assertEqual(self.t.states(), {'done': 5})


class BadEvents(TrackerTestCase):

    def test_each_bad_event_is_dead_with_its_reason(self):
        no_course = event('CourseEnrollment', '2024-05-01T10:00:00Z')
        del no_course['Course']['Id']
        no_user_id = event('CourseStarted', '2024-05-01T10:00:00Z')
        del no_user_id['Users'][0]['Id']
        wrong_type = event('CourseCompleted', '2024-05-01T10:00:00Z')
        wrong_type['Course']['Title'] = 42
        bad_time = event('CourseEnrollment', 'yesterday')
        users_object = event('CourseEnrollment', '2024-05-01T10:00:00Z')
        users_object['Users'] = {'Id': 'u-1'}
        course_without_id = {'Action': 'CoursePublished', 'Title': 'x'}
        # Empty ids name nothing either: an empty learner id would pass
        # for the history's course events (learner '').
        empty_course = event('CourseEnrollment', '2024-05-01T10:00:00Z')
        empty_course['Course']['Id'] = ''
        blank_user = event('CourseStarted', '2024-05-01T10:00:00Z')
        blank_user['Users'][0]['Id'] = ' '
        empty_course_event = {'Action': 'CoursePublished', 'Id': '',
                              'Title': 'x'}
        for n in (no_course, no_user_id, wrong_type, bad_time, users_object,
                  course_without_id, empty_course, blank_user,
                  empty_course_event):
            self.t.send(n)
        self.t.settle()
        reasons = self.t.reasons()
        self.assertEqual(len(reasons), 9, reasons)
        expected = ['Course.Id is missing', 'Users[0].Id is missing',
                    'Course.Title', 'TimeStamp', 'Users',
                    'the course Id is missing',
                    'Course.Id is missing or empty',
                    'Users[0].Id is missing or empty',
                    'the course Id is missing or empty']
        for reason, part in zip(reasons, expected):
            self.assertIn('enrollments', reason)
            self.assertIn(part, reason)
        # Nothing of them reached the tables.
        self.assertEqual(self.t.query('SELECT * FROM enrollments'), [])
        self.assertEqual(self.t.query('SELECT * FROM enrollment_events'), [])

    def test_a_bad_user_rolls_back_the_good_ones(self):
        n = event('CourseEnrollment', '2024-05-01T10:00:00Z',
                  users=('u-1', 'u-2'))
        n['Users'][1]['Email'] = ['not', 'a', 'string']
        self.t.send(n)
        self.t.settle()
        self.assertEqual(self.t.states(), {'dead': 1})
        self.assertEqual(self.t.query('SELECT * FROM enrollments'), [])
        self.assertEqual(self.t.query('SELECT * FROM learners'), [])

    def test_other_actions_are_left_alone(self):
        self.t.send({'Action': 'SomethingNew', 'Course': {'Id': 'c-1'}},
                    {'Action': 42})
        self.t.settle()
        self.assertEqual(self.t.states(), {'done': 2})
        self.assertEqual(self.t.query('SELECT * FROM courses'), [])


class KillNine(unittest.TestCase):
    """Killed at random points while enrollments pour in (and are sent
    again, as the sender does): every acknowledged event reaches the
    tables, and each counts once."""

    def test_every_acknowledged_enrollment_counts_once(self):
        total = 40 if w.wrapped() else 600
        tmp = tempfile.TemporaryDirectory(prefix='whr-enr-kill-')
        self.addCleanup(tmp.cleanup)
        data = os.path.join(tmp.name, 'data')
        port = w.restart_port()
        ids = ['%032x' % (i + 1) for i in range(total)]
        acked, lock, stop = set(), threading.Lock(), threading.Event()

        def notifications(did):
            # A learner of its own, and a step that depends on the Id,
            # so that each delivery has one exact effect.
            action = ('CourseEnrollment', 'CourseStarted',
                      'CourseCompleted')[int(did, 16) % 3]
            return [event(action, '2024-05-01T10:00:00Z', course='k',
                          users=('u-' + did,))]

        senders = [w.Sender(port, ids[k::4], acked, lock, stop,
                            notifications) for k in range(4)]

        def start():
            return w.Server(['--data-dir', data], env=ENV,
                            listen=['127.0.0.1:%d' % port])

        with w.kill_under_load(self, start, senders, stop, 3, 7,
                               time.monotonic() + w.slow(60)):
            t = Tracker.__new__(Tracker)    # only its readers
            t.data = data
            t.settle(timeout=60)
        self.assertEqual(acked, set(ids))
        db = sqlite3.connect(os.path.join(data, 'inbox.sqlite'))
        try:
            rows = db.execute('SELECT learner_id, state, cycle FROM '
                              'enrollments').fetchall()
            events = db.execute('SELECT learner_id, count(*) FROM '
                                'enrollment_events GROUP BY learner_id'
                                ).fetchall()
            runs = db.execute("SELECT count(*) FROM outcomes WHERE handler "
                              "= 'enrollments' AND result = 'done'"
                              ).fetchone()[0]
        finally:
            db.close()
        want = {'u-' + did: ('enrolled', 'started', 'completed')
                [int(did, 16) % 3] for did in ids}
        self.assertEqual({l: s for l, s, c in rows}, want)
        self.assertEqual({c for l, s, c in rows}, {1})
        self.assertEqual(len(rows), total)
        self.assertEqual(dict(events), {l: 1 for l in want})
        self.assertEqual(runs, total)


class Selection(unittest.TestCase):

    def tables(self, data):
        return {r[0] for r in w.inbox_query(
            data, "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def test_no_enrollments_turns_it_off(self):
        t = Tracker('--no-enrollments')
        self.addCleanup(t.close)
        t.send(event('CourseEnrollment', '2024-05-01T10:00:00Z'))
        t.settle()
        self.assertNotIn('enrollments', self.tables(t.data))
        rows = t.query('SELECT count(*) AS n FROM outcomes')
        self.assertEqual(rows[0]['n'], 0)

    def test_placed_by_hand_it_runs_once_in_that_place(self):
        t = Tracker('--handler', 'log', '--handler', 'enrollments')
        self.addCleanup(t.close)
        t.send(event('CourseEnrollment', '2024-05-01T10:00:00Z'))
        t.settle()
        self.assertEqual(len(t.history()), 1)
        self.assertIn('event action=CourseEnrollment', t.srv.log())

    def test_arguments_are_refused(self):
        rc, out, err = w.run_whr(['serve', '--handler', 'enrollments:x'],
                                 env=ENV)
        self.assertEqual(rc, 2)
        self.assertIn('handler enrollments takes no arguments', err)

    def test_tables_newer_than_this_whr_stop_startup(self):
        t = Tracker()
        t.srv.stop()
        db = sqlite3.connect(os.path.join(t.data, 'inbox.sqlite'))
        db.execute("UPDATE enrollments_meta SET value = 99 "
                   "WHERE key = 'schema_version'")
        db.commit()
        db.close()
        rc, out, err = w.run_whr(['serve', '--data-dir', t.data], env=ENV)
        t.close()
        # As for the inbox's own tables: a failure at run time (1).
        self.assertEqual(rc, 1, err)
        self.assertIn('schema version 99, newer than this whr knows', err)


if __name__ == '__main__':
    w.main()
