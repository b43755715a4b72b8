"""Handlers seen from a customer's program: the recorder (recorder.c)
links libwhr, registers handlers a1, enroll, retry, reject, all, all2 and
records every call with what each event getter returned."""

import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V0_SECRET, V1_SECRET, NONE  # noqa: E402

S_TENANT = w.secret('handlers-tenant')
ENV = {'MS_WebHookReceiverSecret_Custom':
       '%s, v0=%s, Tenant-ABC=%s' % (V1_SECRET, V0_SECRET, S_TENANT)}

ENROLLMENT = {
    'Action': 'CourseEnrollment',
    'EnrollmentStatus': 2,
    'EnrollmentStatusText': 'Completed',
    'Course': {
        'SiteId': '3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
        'Id': 'c0ffee00-0000-4abc-9def-0123456789ab',
        'Title': 'S\u00e9curit\u00e9 incendie | niveau 1',
        'Published': False,
    },
    'Users': [
        {'Id': 'u1', 'Email': 'ana@contoso.com', 'Title': 'Ana'},
        {'Id': 'u2', 'Email': 'bo@contoso.com'},
        {'Id': 'u3'},
    ],
    'TimeStamp': '2024-05-01T10:15:30.123Z',
}


def calls(records):
    """(handler, index) of each call, in order."""
    return [(r.handler, int(r.index)) for r in records
            if r.handler != 'destroy']


class Dispatch(w.ServerTestCase):
    server_program = 'recorder'
    server_env = ENV

    def setUp(self):
        self.seen = len(self.srv.records())

    def new_records(self, expect=0):
        return self.srv.records(self.seen + expect)[self.seen:]

    def delivered(self, body, expect, secret=V1_SECRET, **post_args):
        """POST @body, which must be taken (200), and wait for the
        @expect handler calls it makes."""
        r = w.post(self.srv.port, body, secret, **post_args)
        self.assertEqual(r.status, 200, r)
        return self.new_records(expect)

    def assertFields(self, rec, **want):
        """@rec says what @want says, field by field."""
        self.assertEqual({k: getattr(rec, k) for k in want}, want)

    def assertSpan(self, rec, body, span):
        """@rec's JSON is the bytes of @body at @span, and its length
        is theirs."""
        start, end = span
        self.assertEqual(rec.json, body[start:end])
        self.assertEqual(int(rec.json_len), end - start)

    def test_v0_order(self):
        recs = self.delivered(w.vector('v0'), 6, secret=None,
                              signature=w.V0_SIGNATURE, path=WEBHOOK + '/v0')
        self.assertEqual(calls(recs), [('a1', 0), ('all', 0), ('all2', 0),
                                       ('a1', 1), ('all', 1), ('all2', 1)])
        for rec in recs:
            self.assertFields(rec, action='a1', count='2',
                              delivery='1234567890', attempt='1',
                              receiver='v0', p1='pv1',
                              properties=b'{\r\n    "p1": "pv1"\r\n  }')
        body = w.vector('v0')
        spans = w.notification_spans(body)
        self.assertEqual(len(spans), 2)
        for rec in recs:
            self.assertSpan(rec, body, spans[int(rec.index)])

    def test_mixed_actions_in_order(self):
        notes = [
            {'Action': 'CourseEnrollment', 'n': 0},
            {'Action': 'Unknown', 'n': 1},
            {'Action': 'a1', 'n': 2},
            {'n': 3},
            {'Action': 'courseenrollment', 'n': 4},
            {'Action': 'A1', 'n': 5},
        ]
        body = w.delivery(notifications=notes)
        recs = self.delivered(body, 16)
        self.assertEqual(calls(recs), [
            ('enroll', 0), ('all', 0), ('all2', 0),
            ('all', 1), ('all2', 1),
            ('a1', 2), ('all', 2), ('all2', 2),
            ('all', 3), ('all2', 3),
            ('enroll', 4), ('all', 4), ('all2', 4),
            ('a1', 5), ('all', 5), ('all2', 5),
        ])
        actions = {int(rec.index): rec.action for rec in recs}
        self.assertEqual(actions, {0: 'CourseEnrollment', 1: 'Unknown',
                                   2: 'a1', 3: NONE, 4: 'courseenrollment',
                                   5: 'A1'})
        types = {int(rec.index): rec.action_type for rec in recs}
        self.assertEqual(types[3], 'missing')
        self.assertEqual(types[0], 'string')
        for rec in recs:
            self.assertEqual(rec.count, str(len(notes)))

    def test_action_key_found_only_where_it_belongs(self):
        body = (b'{"Notifications": ['
                b'{"Sub": {"Action": "a1"}, "List": [{"Action": "a1"}]}, '
                b'{"Action": "a1", "Action": "CourseEnrollment"}], '
                b'"Action": "a1", "Properties": {"Action": "a1"}}')
        recs = self.delivered(body, 5)
        # A repeated member: the last one counts, for dispatch and getters.
        self.assertEqual(calls(recs), [('all', 0), ('all2', 0),
                                       ('enroll', 1), ('all', 1),
                                       ('all2', 1)])
        self.assertEqual([rec.action for rec in recs],
                         [NONE, NONE] + ['CourseEnrollment'] * 3)

    def test_escaped_actions(self):
        # JSON escapes are decoded before Actions are compared; an Action
        # holding U+0000 is not the Action before it.
        body = (b'{"Notifications": [{"Action": "a\\u0031"}, '
                b'{"Action": "Course\\u0045nrollment"}, '
                b'{"Action": "a1\\u0000x"}]}')
        recs = self.delivered(body, 8)
        self.assertEqual(calls(recs), [('a1', 0), ('all', 0), ('all2', 0),
                                       ('enroll', 1), ('all', 1),
                                       ('all2', 1),
                                       ('all', 2), ('all2', 2)])
        self.assertEqual(recs[0].action, 'a1')
        self.assertEqual(recs[3].action, 'CourseEnrollment')
        self.assertNotEqual(recs[-1].action, 'a1')

    def test_getters(self):
        notes = [ENROLLMENT, {'Action': 'Other'}]
        body = w.delivery(id='5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071', attempt=3,
                          notifications=notes,
                          properties={'p1': 'v\u00e9 | x', 'n': 2})
        before = time.time_ns() // 1000
        r = w.post(self.srv.port, body, S_TENANT,
                   path=WEBHOOK + '/TENANT-abc')
        after = time.time_ns() // 1000
        self.assertEqual(r.status, 200, r)
        recs = self.new_records(5)
        # A learner's event and another one are unrelated: they may run
        # at the same time, each with its handlers in order.
        self.assertEqual([c for c in calls(recs) if c[1] == 0],
                         [('enroll', 0), ('all', 0), ('all2', 0)])
        self.assertEqual([c for c in calls(recs) if c[1] == 1],
                         [('all', 1), ('all2', 1)])
        recs.sort(key=lambda rec: int(rec.index))
        spans = w.notification_spans(body)
        received = {rec.received_at for rec in recs}
        self.assertEqual(len(received), 1, 'one delivery, one time')
        received = int(received.pop())
        self.assertGreaterEqual(received, before - 2000)
        self.assertLessEqual(received, after + 2000)
        props = body[body.index(b'"Properties": ') + 14:]
        props = props[:props.index(b'}') + 1]
        for rec in recs:
            i = int(rec.index)
            with self.subTest(handler=rec.handler, index=i):
                self.assertFields(
                    rec, delivery='5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071',
                    attempt='3', receiver='tenant-abc', count='2',
                    p1='v\u00e9 | x', properties=props)
                self.assertSpan(rec, body, spans[i])
                start, end = spans[i]
                self.assertEqual(rec.json40.encode('utf-8'),
                                 body[start:min(end, start + 40)])
        self.assertFields(recs[0], action='CourseEnrollment',
                          course_id='c0ffee00-0000-4abc-9def-0123456789ab',
                          email='ana@contoso.com', users='3',
                          action_type='string', course_type='object',
                          status_int='2', published='false')
        self.assertFields(recs[3], action='Other', course_id=NONE,
                          email=NONE, users='0', course_type='missing',
                          status_int='err:-2',     # -ENOENT
                          published='err:-2')

    def test_v1_vector(self):
        recs = self.delivered(w.vector('v1'), 3, secret=None,
                              signature=w.V1_SIGNATURE)
        self.assertEqual(calls(recs), [('enroll', 0), ('all', 0),
                                       ('all2', 0)])
        body = w.vector('v1')
        (start, end), = w.notification_spans(body)
        for rec in recs:
            self.assertFields(
                rec, json=body[start:end], receiver='', p1=NONE,
                properties=b'{}',
                course_id='c0ffee00-1234-4abc-9def-0123456789ab',
                email='alex@contoso.com', users='1', status_int='0',
                published='true')

    def test_no_id_no_attempt_no_properties(self):
        body = (b'{"Notifications": [{"Action": "a1"}], '
                b'"Attempt": "2"}')
        recs = self.delivered(body, 3)
        self.assertEqual(calls(recs), [('a1', 0), ('all', 0), ('all2', 0)])
        for rec in recs:
            self.assertFields(rec, delivery=NONE, attempt='0',
                              properties=b'{}', p1=NONE,
                              json=b'{"Action": "a1"}')

    def test_byte_order_mark_keeps_offsets(self):
        body = b'\xef\xbb\xbf' + w.delivery(notifications=[ENROLLMENT])
        (start, end), = w.notification_spans(body)
        recs = self.delivered(body, 3)
        self.assertEqual(len(recs), 3)
        for rec in recs:
            self.assertEqual(rec.json, body[start:end])

    def test_numeric_and_boolean_actions_reach_catch_all(self):
        body = (b'{"Id": "n", "Notifications": [{"Action": 1}, '
                b'{"Action": true}, {"Action": false}, {"Action": 1.5}, '
                b'{"Action": null}, {"Action": -20}]}')
        recs = self.delivered(body, 12)
        self.assertEqual(calls(recs), [(h, i) for i in range(6)
                                       for h in ('all', 'all2')])
        actions = [rec.action for rec in recs if rec.handler == 'all']
        self.assertEqual(actions, ['1', 'true', 'false', '1.5', NONE, '-20'])
        types = [rec.action_type for rec in recs if rec.handler == 'all']
        self.assertEqual(types, ['integer', 'bool', 'bool', 'number', 'null',
                                 'integer'])

    def test_no_notifications_calls_no_handler(self):
        for body in [b'{"Id": "x"}', b'{"Notifications": []}',
                     b'{"Notifications": null}']:
            with self.subTest(body=body):
                r = w.post(self.srv.port, body, V1_SECRET)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.new_records(), [])

    def test_refused_delivery_calls_no_handler(self):
        body = w.delivery(notifications=[{'Action': 'a1'}, 5])
        self.assertEqual(w.post(self.srv.port, body, V1_SECRET).status, 400)
        body = w.delivery()
        self.assertEqual(w.post(self.srv.port, body, V0_SECRET).status, 400)
        self.assertEqual(w.post(self.srv.port, body, V1_SECRET,
                                content_type='text/plain').status, 415)
        self.assertEqual(self.new_records(), [])


class StopFromAHandler(unittest.TestCase):
    def test_whr_receiver_stop_from_a_handler(self):
        # receiver.h: whr_receiver_stop() is safe from a handler; the
        # receiver then shuts down gracefully. Work it had not started
        # stays in the inbox and is done at the next start.
        with tempfile.TemporaryDirectory(prefix='whr-test-') as data:
            record = os.path.join(data, 'record.txt')
            env = dict(ENV, WHR_RECORD_STOP_ACTION='StopNow',
                       WHR_RECORD=record)
            args = ['--data-dir', os.path.join(data, 'inbox'),
                    '--workers', '1']
            with w.Server(args, program='recorder', env=env) as srv:
                r = w.post(srv.port, w.delivery(notifications=[
                    {'Action': 'a1'}, {'Action': 'StopNow'},
                    {'Action': 'a1'}]), V1_SECRET)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(srv.wait_exit(w.slow(10)), 0, srv.log())
                log = srv.check_exit(0)
                self.assertIn('stop requested', log)
                self.assertRegex(log, r'(?m) stopped$')
                first_lines = srv.records()
                first = calls(first_lines)
            self.assertEqual(first[:5], [('a1', 0), ('all', 0), ('all2', 0),
                                         ('all', 1), ('all2', 1)])
            env = dict(ENV, WHR_RECORD=record)
            # The file holds the first run's lines, its handlers'
            # destroy lines too, and the first run may have done the
            # third notification before it stopped: wait for the calls
            # it left, eight in all.
            with w.Server(args, program='recorder', env=env) as srv:
                recs = srv.records(len(first_lines) + 8 - len(first))
            self.assertEqual(calls(recs)[5:], [('a1', 2), ('all', 2),
                                               ('all2', 2)])


class BuiltinHandlers(unittest.TestCase):
    def test_log_handler(self):
        with w.Server(['--handler', 'log'], env=ENV) as srv:
            mark = srv.mark()
            self.assertEqual(w.post(srv.port, w.vector('v0'),
                                    signature=w.V0_SIGNATURE,
                                    path=WEBHOOK + '/V0').status, 200)
            srv.wait_log(r'event action=a1 delivery=1234567890 attempt=1 '
                         r'index=2/2 receiver=v0', since=mark)
            # The enrollment tracker (on by default), then log.
            self.assertIn('2 handler(s)', srv.log())

    def test_noop_handler_and_both(self):
        with w.Server(['--handler=noop', '--handler', 'log',
                       '--no-enrollments'], env=ENV) as srv:
            self.assertIn('2 handler(s)', srv.log())
            self.assertEqual(w.post(srv.port, w.vector('v1'),
                                    V1_SECRET).status, 200)

    def test_bad_handlers_are_configuration_errors(self):
        for args in (['--handler', 'nosuch'], ['--handler', 'log:x'],
                     ['--handler', 'noop:'], ['--handler'],
                     ['--handler', 'log', '--handler', 'log']):
            with self.subTest(args=args):
                rc, out, err = w.run_whr(['--listen', '127.0.0.1:0', *args],
                                         ENV, program='serve')
                self.assertEqual(rc, 2, err)
                self.assertTrue(err.strip())


class Paths(unittest.TestCase):
    def test_field_paths(self):
        paths = ['Big', 'Neg', 'Float', 'Null', 'Empty', 'Unicode',
                 'Course.Title', 'Users[1].Email', 'Users[2].Email',
                 'Users[3]', 'Users', 'Course.Published', 'EnrollmentStatus',
                 'Course', 'Nope', 'Users[0]', 'Course..Id', 'Users[x]',
                 '.Course', 'Users[1]Email', 'Course.Id.More']
        env = dict(ENV, WHR_RECORD_PATHS=','.join(paths))
        with w.Server(program='recorder', env=env) as srv:
            note = dict(ENROLLMENT, Big=99999999999999999999,
                        Neg=-9223372036854775807, Float=1.0, Null=None,
                        Empty='', Unicode='\u65e5\u672c\\\n\u00e9')
            body = w.delivery(notifications=[note])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            rec = srv.records(1)[0]
        got = dict(zip(paths, rec.paths))
        self.assertEqual(got, {
            'Big': ('number', ''),
            'Neg': ('integer', '-9223372036854775807'),
            'Float': ('number', ''),
            'Null': ('null', ''),
            'Empty': ('string', ''),
            'Unicode': ('string', '\u65e5\u672c\\\n\u00e9'),
            'Course.Title': ('string', 'S\u00e9curit\u00e9 incendie | '
                             'niveau 1'),
            'Users[1].Email': ('string', 'bo@contoso.com'),
            'Users[2].Email': ('missing', ''),
            'Users[3]': ('missing', ''),
            'Users': ('array', '3'),
            'Course.Published': ('bool', 'false'),
            'EnrollmentStatus': ('integer', '2'),
            'Course': ('object', ''),
            'Nope': ('missing', ''),
            'Users[0]': ('object', ''),
            'Course..Id': ('missing', ''),
            'Users[x]': ('missing', ''),
            '.Course': ('missing', ''),
            'Users[1]Email': ('missing', ''),
            'Course.Id.More': ('missing', ''),
        })


    def test_int64_limits_are_integers(self):
        # event.h: WHR_VALUE_INTEGER is "a number that fits in int64_t".
        paths = ['Max', 'Min', 'Over', 'Under']
        env = dict(ENV, WHR_RECORD_PATHS=','.join(paths))
        with w.Server(program='recorder', env=env) as srv:
            body = (b'{"Notifications": [{"Max": 9223372036854775807, '
                    b'"Min": -9223372036854775808, '
                    b'"Over": 9223372036854775808, '
                    b'"Under": -9223372036854775809}]}')
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            rec = srv.records(1)[0]
        self.assertEqual(dict(zip(paths, rec.paths)), {
            'Max': ('integer', '9223372036854775807'),
            'Min': ('integer', '-9223372036854775808'),
            'Over': ('number', ''),
            'Under': ('number', ''),
        })


class Results(unittest.TestCase):
    def test_retry_twice_then_done(self):
        # The answer is 200 at once: the delivery is stored. The handler
        # that asked for a retry runs again later (with backoff), and only
        # it: the others of the notification were done.
        env = dict(ENV, WHR_RECORD_RETRIES='2')
        with w.Server(['--retry-delay', '50ms'], program='recorder',
                      env=env) as srv:
            mark = srv.mark()
            body = w.delivery(id='feedc0de' * 4, notifications=[
                {'Action': 'a1'}, {'Action': 'RetryMe'}])
            r = w.post(srv.port, body, V1_SECRET)
            self.assertEqual(r.status, 200, r)
            srv.wait_log(r'(?m)^\S+ warn .*handler=retry .*result=retry '
                         r'.*recorder asks to retry delivery %s index 1'
                         % ('feedc0de' * 4), since=mark, count=2)
            recs = srv.records(8)
            self.assertEqual([c for c in calls(recs) if c[1] == 0],
                             [('a1', 0), ('all', 0), ('all2', 0)])
            self.assertEqual([c for c in calls(recs) if c[1] == 1],
                             [('retry', 1), ('all', 1), ('all2', 1),
                              ('retry', 1), ('retry', 1)])

    def test_reject_is_logged_with_the_reason(self):
        with w.Server(program='recorder', env=ENV) as srv:
            mark = srv.mark()
            body = w.delivery(id='badc0ffe' * 4, notifications=[
                {'Action': 'rejectme'}])
            r = w.post(srv.port, body, V1_SECRET)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b'')
            srv.wait_log(r'(?m)^\S+ warn .*handler=reject .*result=reject '
                         r'.*recorder rejects delivery %s index 0'
                         % ('badc0ffe' * 4), since=mark)
            srv.wait_log(r'notification is dead .*reason="reject: recorder '
                         r'rejects delivery', since=mark)
            self.assertEqual(calls(srv.records(3)), [
                ('reject', 0), ('all', 0), ('all2', 0)])


class Lifetime(unittest.TestCase):
    def test_destroy_callbacks_run_once_at_exit(self):
        with w.Server(program='recorder', env=ENV) as srv:
            self.assertEqual(w.post(srv.port, w.vector('v1'),
                                    V1_SECRET).status, 200)
            self.assertEqual([r.handler for r in srv.records(3)],
                             ['enroll', 'all', 'all2'])
            srv.stop()
            destroyed = [r.name for r in srv.records()
                         if r.handler == 'destroy']
        self.assertEqual(destroyed, ['a1', 'enroll', 'retry', 'reject',
                                     'all', 'all2'])

    def test_recorder_exit_statuses(self):
        rc, out, err = w.run_whr(['--version'], program='recorder')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^whr \d+\.\d+\.\d+')
        rc, out, err = w.run_whr(['--help'], program='recorder')
        self.assertEqual(rc, 0, err)
        self.assertIn('--max-body', out)
        rc, out, err = w.run_whr(['--listen', '127.0.0.1:0'], {},
                                 program='recorder')
        self.assertEqual(rc, 2, err)
        rc, out, err = w.run_whr(['--nosuch'], ENV, program='recorder')
        self.assertEqual(rc, 2, err)
        self.assertIn('--nosuch', err)
        with w.Server(program='recorder', env=ENV) as srv:
            rc, out, err = w.run_whr(
                ['--listen', '127.0.0.1:%d' % srv.port], ENV,
                program='recorder')
            self.assertEqual(rc, 1, err)


if __name__ == '__main__':
    w.main()
