"""The sample deliveries (samples/ACTION.json, issue 3 point 4): each is
a delivery the real `whr serve` accepts when signed, shaped as PROTOCOL.md
§2 says, and read with the right types through libwhr's event getters
(the recorder)."""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           '..', '..', 'samples')

ENROLLMENT_ACTIONS = ('CourseEnrollment', 'CourseUnenrollment',
                      'CourseStarted', 'CourseCompleted',
                      'EnrollmentApprovalRequest')
COURSE_ACTIONS = ('CoursePublished', 'CourseUnpublished')
ACTIONS = ENROLLMENT_ACTIONS + COURSE_ACTIONS

# PROTOCOL.md §2, member by member, in the order the files have them.
COURSE_MEMBERS = [('SiteId', str), ('WebId', str), ('Id', str),
                  ('Title', str), ('Url', str), ('CourseType', str),
                  ('Published', bool)]
USER_MEMBERS = [('Id', str), ('DirectoryObjectId', str),
                ('EnrollmentId', str), ('LoginName', str), ('Title', str),
                ('Department', str), ('Email', str)]
ENROLLMENT_MEMBERS = [('Action', str), ('EnrollmentStatus', int),
                      ('EnrollmentStatusText', str), ('Course', dict),
                      ('Users', list), ('TimeStamp', str)]
FLAT_MEMBERS = [('Action', str)] + COURSE_MEMBERS + [('TimeStamp', str)]

GUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                  r'[0-9a-f]{12}$')
ISO_8601 = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?'
                      r'(Z|[+-]\d\d:\d\d)$')
SECRET = w.secret('samples', 40)
SECRETS_ENV = {'MS_WebHookReceiverSecret_Custom': SECRET}


def sample_bytes(action):
    with open(os.path.join(SAMPLES_DIR, action + '.json'), 'rb') as f:
        return f.read()


def sample(action):
    return json.loads(sample_bytes(action).decode('utf-8'))


def value_type(value):
    """Python's type as json.loads gives it; bool is not an int here."""
    return bool if isinstance(value, bool) else type(value)


class Files(unittest.TestCase):
    """The files themselves, read with Python's json module."""

    def test_seven_files_and_a_readme(self):
        names = sorted(os.listdir(SAMPLES_DIR))
        self.assertEqual(names, sorted([a + '.json' for a in ACTIONS] +
                                       ['README.md']))

    def test_delivery_envelope(self):
        for action in ACTIONS:
            with self.subTest(action=action):
                data = sample_bytes(action)
                self.assertFalse(data.startswith(b'\xef\xbb\xbf'))
                self.assertFalse(data.endswith(b'\n'))
                self.assertNotIn(b'\n', data.replace(b'\r\n', b''))
                body = sample(action)
                self.assertEqual(list(body), ['Id', 'Attempt', 'Properties',
                                              'Notifications'])
                self.assertRegex(body['Id'], r'^[0-9a-f]{32}$')
                self.assertEqual(body['Attempt'], 1)
                self.assertEqual(body['Properties'], {})
                self.assertEqual(len(body['Notifications']), 1)
                self.assertEqual(body['Notifications'][0]['Action'], action)
                # exactly the sender's layout (whrtest's independent
                # Newtonsoft imitation agrees for these files)
                self.assertEqual(data, w.delivery(
                    id=body['Id'], notifications=body['Notifications']))

    def test_ids_distinct(self):
        ids = [sample(a)['Id'] for a in ACTIONS]
        self.assertEqual(len(set(ids)), len(ids))
        # and not the vectors' Id, so a receiver that deduplicates does
        # not take a sample for a vector it already saw
        self.assertNotIn('5f0c2a9e8b7d4c3e9a1b2c3d4e5f6071', ids)

    def assert_members(self, obj, members, where):
        self.assertEqual(list(obj), [m for m, _ in members], where)
        for name, kind in members:
            self.assertIs(value_type(obj[name]), kind,
                          '%s.%s is %r' % (where, name, obj[name]))

    def assert_course(self, course, where):
        self.assertRegex(course['SiteId'], GUID, where)
        self.assertRegex(course['WebId'], GUID, where)
        self.assertRegex(course['Id'], GUID, where)
        self.assertTrue(course['Url'].startswith(
            'https://contoso.sharepoint.com/sites/'), where)
        self.assertIn(course['CourseType'], ('Course', 'TrainingPlan'))

    def test_enrollment_notifications(self):
        users_seen = []
        for action in ENROLLMENT_ACTIONS:
            with self.subTest(action=action):
                n = sample(action)['Notifications'][0]
                self.assert_members(n, ENROLLMENT_MEMBERS, action)
                self.assert_members(n['Course'], COURSE_MEMBERS,
                                    action + '.Course')
                self.assert_course(n['Course'], action)
                self.assertTrue(n['Course']['Published'])
                self.assertGreaterEqual(len(n['Users']), 1)
                for i, u in enumerate(n['Users']):
                    where = '%s.Users[%d]' % (action, i)
                    self.assert_members(u, USER_MEMBERS, where)
                    for k in ('Id', 'DirectoryObjectId', 'EnrollmentId'):
                        self.assertRegex(u[k], GUID, where)
                    self.assertEqual(u['LoginName'],
                                     'i:0#.f|membership|' + u['Email'])
                    self.assertTrue(u['Email'].endswith('@contoso.com'))
                users_seen.append(len(n['Users']))
                self.assertRegex(n['TimeStamp'], ISO_8601)
        self.assertIn(2, users_seen, 'no sample with two users')

    def test_course_notifications(self):
        for action, published in (('CoursePublished', True),
                                  ('CourseUnpublished', False)):
            with self.subTest(action=action):
                n = sample(action)['Notifications'][0]
                self.assert_members(n, FLAT_MEMBERS, action)
                self.assert_course(n, action)
                self.assertIs(n['Published'], published)
                self.assertRegex(n['TimeStamp'], ISO_8601)
                self.assertNotIn('Course', n)
                self.assertNotIn('Users', n)

    def test_status_numbers_distinct(self):
        # Assumed values (samples/README.md), but one number per text.
        pairs = {(sample(a)['Notifications'][0]['EnrollmentStatus'],
                  sample(a)['Notifications'][0]['EnrollmentStatusText'])
                 for a in ENROLLMENT_ACTIONS}
        self.assertEqual(len({p[0] for p in pairs}), len(pairs))
        self.assertEqual(len({p[1] for p in pairs}), len(pairs))


class Serve(w.ServerTestCase):
    """The real `whr serve` accepts each sample signed as it is."""

    server_env = SECRETS_ENV

    def test_each_sample_accepted(self):
        for action in ACTIONS:
            with self.subTest(action=action):
                body = sample_bytes(action)
                since = self.srv.mark()
                r = w.post(self.srv.port, body, SECRET)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b'')
                f = w.log_fields(self.srv.request_line(since))
                self.assertEqual(f['status'], '200')
                self.assertEqual(f['delivery'], sample(action)['Id'])
                self.assertEqual(f['notifications'], '1')
                self.assertEqual(f['bytes'], str(len(body)))

    def test_changed_sample_refused(self):
        # the signature covers the exact bytes: LF line ends do not verify
        body = sample_bytes('CourseCompleted')
        r = w.post(self.srv.port, body.replace(b'\r\n', b'\n'),
                   signature=w.sign(SECRET, body))
        self.assertEqual(r.status, 400, r)


def paths_of(notification, prefix=''):
    """Every leaf and container path of @notification, event.h syntax."""
    out = []
    for k, v in notification.items():
        p = prefix + k
        out.append((p, v))
        if isinstance(v, dict):
            out += paths_of(v, p + '.')
        elif isinstance(v, list):
            for i, e in enumerate(v):
                out.append(('%s[%d]' % (p, i), e))
                if isinstance(e, dict):
                    out += paths_of(e, '%s[%d].' % (p, i))
    return out


def expected_field(value):
    """The recorder's TYPE=VALUE for a JSON value."""
    if isinstance(value, bool):
        return 'bool=' + ('true' if value else 'false')
    if isinstance(value, int):
        return 'integer=%d' % value
    if isinstance(value, str):
        return 'string=' + value
    if isinstance(value, list):
        return 'array=%d' % len(value)
    if isinstance(value, dict):
        return 'object='
    raise AssertionError('unexpected value %r' % value)


class Decoded(unittest.TestCase):
    """A program linked with libwhr (the recorder) reads every member §2
    lists with the getter of its type, and gets the file's value."""

    def check(self, action):
        note = sample(action)['Notifications'][0]
        paths = paths_of(note)
        self.assertLessEqual(len(paths), 32)    # the recorder's limit
        env = dict(SECRETS_ENV)
        env['WHR_RECORD_PATHS'] = ','.join(p for p, _ in paths)
        with w.Server(env=env, program='recorder') as srv:
            r = w.post(srv.port, sample_bytes(action), SECRET)
            self.assertEqual(r.status, 200, r)
            # Handlers run after the answer: wait for theirs (enroll, if
            # it is a CourseEnrollment, then all and all2).
            expect = 3 if action == 'CourseEnrollment' else 2
            recs = [x for x in srv.records(expect) if x.handler == 'all']
            self.assertEqual(len(recs), 1, srv.records())
            rec = recs[0]
            self.assertEqual(rec.action, action)
            self.assertEqual(rec.delivery, sample(action)['Id'])
            self.assertEqual(rec.attempt, '1')
            got = ['%s=%s' % kv for kv in rec.paths]
            want = [expected_field(v) for _, v in paths]
            for (path, _), g, x in zip(paths, got, want):
                self.assertEqual(g, x, '%s %s' % (action, path))
            self.assertEqual(len(got), len(want))

    def test_enrollment_samples(self):
        for action in ENROLLMENT_ACTIONS:
            with self.subTest(action=action):
                self.check(action)

    def test_course_samples(self):
        for action in COURSE_ACTIONS:
            with self.subTest(action=action):
                self.check(action)


if __name__ == '__main__':
    w.main()
