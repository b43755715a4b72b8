"""Issue 13, the defects that are not about load (test_hostile.py has the
attacks): secrets out of reach of exec commands, exact Ids, strict
framing, --max-notifications, the data folder's files, and servers
restarted on one port."""

import glob
import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

S_PREVIOUS = w.secret('hardening-previous')
ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
PEEK = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    'exec-commands', 'peek.py')
NOBODY = 65534
DB_FILES = ('inbox.sqlite', 'inbox.sqlite-wal', 'inbox.sqlite-shm')


def copy_readable(src, dst, mode):
    """@src's bytes (through links) in @dst, with @mode."""
    with open(src, 'rb') as f, open(dst, 'wb') as out:
        out.write(f.read())
    os.chmod(dst, mode)


def one_line_reason(test, r, *words):
    """An error answer whose body is one line of text holding @words
    (any case)."""
    w.assert_error_body(test, r, [V1_SECRET])
    text = r.body.decode('utf-8', 'replace').rstrip('\r\n')
    test.assertTrue(text, 'an empty reason: %r' % r)
    test.assertNotIn('\n', text, 'more than one line: %r' % r)
    for word in words:
        test.assertIn(word.lower(), text.lower(), r)


# ---- 5. secrets out of reach -----------------------------------------------

@unittest.skipUnless(os.geteuid() == 0, 'needs root to run whr as nobody')
class SecretsOutOfReach(unittest.TestCase):
    """whr runs as an ordinary user (nobody) with an exec handler whose
    command, of the same user, tries what an attacker's command would:
    read whr's /proc/PID/environ, open its memory, attach with ptrace.
    (As root the command could do all of it whatever whr does: root may
    ptrace anything. So whr runs as a user here, as it should in
    production.)"""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix='whr-peek-')
        os.chmod(cls.tmp.name, 0o755)
        cls.out = os.path.join(cls.tmp.name, 'out')
        cls.data = os.path.join(cls.tmp.name, 'data')
        for d in (cls.out, cls.data):
            os.mkdir(d)
            os.chown(d, NOBODY, NOBODY)
        # A copy nobody can read whatever the checkout's permissions.
        peek = os.path.join(cls.tmp.name, 'peek.py')
        with open(PEEK, 'rb') as src, open(peek, 'wb') as dst:
            dst.write(src.read())
        os.chmod(peek, 0o644)
        command = 'python3 %s %s' % (shlex.quote(peek), shlex.quote(cls.out))
        # And of whr and libwhr (a checkout in a private scratch folder
        # is out of nobody's reach).
        bindir = os.path.join(cls.tmp.name, 'bin')
        os.mkdir(bindir)
        whr = os.path.join(bindir, 'whr')
        copy_readable(w.whr_bin(), whr, 0o755)
        for d in os.environ.get('LD_LIBRARY_PATH', '').split(':'):
            lib = os.path.join(d, 'libwhr.so.0') if d else ''
            if lib and os.path.exists(lib):
                copy_readable(lib, os.path.join(bindir, 'libwhr.so.0'),
                              0o644)
                break
        env = dict(ENV, WHR_PREVIOUS_SECRETS=S_PREVIOUS,
                   LD_LIBRARY_PATH=bindir)
        cls.secrets = (V1_SECRET, S_PREVIOUS)
        program = ['setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY,
                   '--clear-groups', whr, 'serve']
        cls.srv = w.Server(['--no-enrollments', '--data-dir', cls.data,
                            '--handler', 'exec:*=' + command],
                           env=env, program=program)
        with w.cleaned_up_on_error(cls.srv, cls.tmp):
            cls.pid = cls.srv.pid
            with open('/proc/%d/status' % cls.pid) as f:
                uids = [l for l in f if l.startswith('Uid:')][0].split()
            assert int(uids[1]) == NOBODY, uids
            # What /proc says of whr from outside, while it runs.
            cls.proc_owner = os.stat('/proc/%d/environ' % cls.pid).st_uid
            r = w.post(cls.srv.port, w.delivery(), V1_SECRET)
            assert r.status == 200, r
            deadline = time.monotonic() + w.slow(10)
            while not glob.glob(os.path.join(cls.out, '*.json')):
                if time.monotonic() > deadline:
                    raise AssertionError('the command left no record:\n'
                                         + cls.srv.log())
                time.sleep(0.02)
            path, = glob.glob(os.path.join(cls.out, '*.json'))
            with open(path) as f:
                cls.rec = json.load(f)
            cls.proc_owner_after = os.stat('/proc/%d/environ' %
                                            cls.pid).st_uid

    @classmethod
    def tearDownClass(cls):
        w.stop_and_clean(cls.srv, cls.tmp)

    def test_the_command_is_whrs_child_and_user(self):
        # The premise of the others: the command's parent is whr, and it
        # runs as whr's user.
        self.assertEqual(self.rec['ppid'], self.pid)
        self.assertEqual(self.rec['uid'], NOBODY)

    def test_proc_environ_of_whr_holds_no_secret(self):
        environ = self.rec['environ']
        if environ is None:
            # Unreadable (whr is not dumpable): nothing to find there.
            self.assertIn(self.rec['environ_error'], ('EACCES', 'EPERM'))
            return
        for secret in self.secrets:
            # Not assertNotIn: its message would print the secret.
            self.assertTrue(secret not in environ,
                            'a secret (%d chars) is in /proc/%d/environ, '
                            'readable by any command whr runs'
                            % (len(secret), self.pid))
        names = [e.split('=', 1)[0] for e in environ.split('\0')
                 if '=' in e and e.split('=', 1)[1].strip()]
        self.assertEqual([n for n in names
                          if n.upper().startswith('MS_WEBHOOKRECEIVERSECRET')
                          or n == 'WHR_PREVIOUS_SECRETS'], [],
                         'secret variables with a value in /proc/PID/environ')

    def test_whr_is_not_dumpable(self):
        # A process that is not dumpable has its /proc entries owned by
        # root (not /proc/PID itself, which the kernel keeps owned by the
        # process's user for ps), and no process of its user may open its
        # memory or attach to it (prctl(PR_SET_DUMPABLE, 0)).
        seen = {
            'owner of /proc/PID/environ while whr runs': {self.proc_owner,
                                                  self.proc_owner_after},
            'open /proc/PPID/mem from the command': self.rec['mem'],
            'PTRACE_SEIZE of whr from the command': self.rec['ptrace'],
        }
        if self.rec['mem'] == 'EPERM':
            seen['open /proc/PPID/mem from the command'] = 'EACCES'
        self.assertEqual(seen, {
            'owner of /proc/PID/environ while whr runs': {0},
            'open /proc/PPID/mem from the command': 'EACCES',
            'PTRACE_SEIZE of whr from the command': 'EPERM',
        }, 'whr is dumpable')

    def test_the_command_inherits_no_secret(self):
        env = self.rec['own_env']
        self.assertEqual([k for k in env if 'SECRET' in k.upper()], [])
        text = json.dumps(env)
        for secret in self.secrets:
            self.assertTrue(secret not in text,
                            'a secret (%d chars) is in the command\'s '
                            'environment' % len(secret))


# ---- 6. Ids exact ------------------------------------------------------------

def body_text(text):
    """A raw JSON body from a template: CRLF line ends, as the sender."""
    return text.replace('\n', '\r\n').encode('ascii')


LONE = [
    # (where, the JSON body)
    ('Id, lone high', '{"Id": "sur\\ud800", "Attempt": 1, "Properties": {},'
     ' "Notifications": [{"Action": "a1"}]}'),
    ('Id, lone low', '{"Id": "sur\\udc00", "Attempt": 1, "Properties": {},'
     ' "Notifications": [{"Action": "a1"}]}'),
    ('Id, high at the end', '{"Id": "\\uD800", "Attempt": 1,'
     ' "Properties": {}, "Notifications": [{"Action": "a1"}]}'),
    ('Id, high then high', '{"Id": "x\\ud800\\ud800", "Attempt": 1,'
     ' "Properties": {}, "Notifications": [{"Action": "a1"}]}'),
    ('Id, high then a letter escape', '{"Id": "x\\ud800\\u0041",'
     ' "Attempt": 1, "Properties": {}, "Notifications": [{"Action": "a1"}]}'),
    ('Id, low then high', '{"Id": "x\\udc00\\ud800", "Attempt": 1,'
     ' "Properties": {}, "Notifications": [{"Action": "a1"}]}'),
    ('Course.Id', '{"Id": "%s", "Attempt": 1, "Properties": {},'
     ' "Notifications": [{"Action": "CourseEnrollment",'
     ' "Course": {"Id": "c\\ud800"}, "Users": [{"Id": "u1"}],'
     ' "TimeStamp": "2024-05-01T10:00:00Z"}]}'),
    ('Users[0].Id', '{"Id": "%s", "Attempt": 1, "Properties": {},'
     ' "Notifications": [{"Action": "CourseEnrollment",'
     ' "Course": {"Id": "c1"}, "Users": [{"Id": "u\\udfff"}],'
     ' "TimeStamp": "2024-05-01T10:00:00Z"}]}'),
    ('Action', '{"Id": "%s", "Attempt": 1, "Properties": {},'
     ' "Notifications": [{"Action": "Course\\ud800"}]}'),
    ('a property', '{"Id": "%s", "Attempt": 1,'
     ' "Properties": {"p": "\\udbff"}, "Notifications": [{"Action": "a1"}]}'),
    ('a member name', '{"Id": "%s", "Attempt": 1, "Properties": {},'
     ' "Notifications": [{"Action": "a1", "x\\ud800": 1}]}'),
    ('an ignored member', '{"Id": "%s", "Attempt": 1, "Properties": {},'
     ' "Notifications": [{"Action": "a1"}], "Extra": ["\\ud800"]}'),
]


class Ids(w.ServerTestCase):
    server_env = ENV

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = os.path.join(cls.srv.tmp.name, 'whr-data')

    def stored(self):
        """The stored Ids, in arrival order; bytes that are not UTF-8
        (as a lone surrogate became) decoded with surrogateescape."""
        return [None if i is None else i.decode('utf-8', 'surrogateescape')
                for (i,) in w.inbox_query(
                    self.data, 'SELECT CAST(delivery_id AS BLOB)'
                    ' FROM deliveries ORDER BY seq')]

    def count(self):
        (n,), = w.inbox_query(self.data, 'SELECT count(*) FROM deliveries')
        return n

    def test_a_lone_surrogate_anywhere_is_refused(self):
        for where, template in LONE:
            with self.subTest(where):
                text = template % os.urandom(16).hex() \
                    if '%s' in template else template
                body = body_text(text)
                before = self.count()
                r = w.post(self.srv.port, body, V1_SECRET)
                self.assertEqual(r.status, 400, r)
                one_line_reason(self, r, 'surrogate')
                self.assertEqual(self.count(), before, 'stored anyway')

    def test_ids_that_differ_in_a_lone_surrogate_do_not_collide(self):
        # Both became "sur?": the second answered 200 and was dropped as
        # a duplicate. Refused, neither is taken for the other.
        for did in ('sur\\ud800', 'sur\\ud801'):
            body = body_text('{"Id": "%s", "Attempt": 1, "Properties": {},'
                             ' "Notifications": [{"Action": "a1"}]}' % did)
            r = w.post(self.srv.port, body, V1_SECRET)
            self.assertEqual(r.status, 400, '%s: %r' % (did, r))
        self.assertNotIn('sur?', self.stored())

    def test_surrogate_pairs_are_characters(self):
        # A pair is one character: escaped or raw, the same Id; two
        # different pairs, two Ids.
        tag = os.urandom(4).hex()
        bodies = [('%s\\ud83d\\ude00' % tag, 200),
                  ('%s\U0001F600' % tag, 200),
                  ('%s\\ud83d\\ude01' % tag, 200)]
        for did, status in bodies:
            body = ('{"Id": "%s", "Attempt": 1, "Properties": {},'
                    ' "Notifications": [{"Action": "a1"}]}'
                    % did).encode('utf-8')
            r = w.post(self.srv.port, body, V1_SECRET)
            self.assertEqual(r.status, status, r)
        ids = [i for i in self.stored() if i and i.startswith(tag)]
        self.assertEqual(ids, [tag + '\U0001F600', tag + '\U0001F601'])

    def test_an_empty_id_is_no_id(self):
        # Each delivery with "Id": "" is stored and handled, never taken
        # for a resend of another, with the warning of a missing Id.
        mark = self.srv.mark()
        before = self.count()
        body = body_text('{"Id": "", "Attempt": 1, "Properties": {},'
                         ' "Notifications": [{"Action": "EmptyId"}]}')
        again = body_text('{"Id": "", "Attempt": 2, "Properties": {},'
                          ' "Notifications": [{"Action": "EmptyId"}]}')
        for b in (body, body, again):
            r = w.post(self.srv.port, b, V1_SECRET)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.count(), before + 3,
                         'a delivery with an empty Id was deduplicated')
        rows = w.inbox_query(self.data, 'SELECT delivery_id FROM'
                             ' deliveries ORDER BY seq DESC LIMIT 3')
        self.assertEqual(rows, [(None,)] * 3,
                         'stored as an Id, not as a delivery without one')
        w.wait_until('the three handled', lambda: w.inbox_query(
            self.data, "SELECT count(*) FROM notifications"
            " WHERE action = 'EmptyId' AND state = 'done'") == [(3,)])
        self.srv.wait_log(r'delivery without an Id accepted', since=mark,
                          count=3)


# ---- 7. strict framing -------------------------------------------------------

SMUGGLED = w.build_request('GET', WEBHOOK + '?echo=SMUGGLED')


class Framing(w.ServerTestCase):
    server_env = ENV

    def refused(self, raw):
        """Send @raw: the answer must be 400, the connection closed, and
        nothing after it answered."""
        with w.Connection(self.srv.port) as c:
            c.send(raw)
            try:
                r = c.read_response('GET')
            except (w.Closed, ConnectionError):
                self.fail('closed without an answer; received %r' % c.buf)
            self.assertEqual(r.status, 400, r)
            self.assertIsNotNone(c.wait_closed(w.slow(5)),
                                 'the connection stayed open')
            self.assertNotIn(b'SMUGGLED', c.buf)

    def test_space_before_the_colon_of_transfer_encoding(self):
        # A proxy that trims the name reads a chunked body; evhttp read
        # an unknown header and no body.
        self.refused(b'GET /healthz HTTP/1.1\r\nHost: x\r\n'
                     b'Transfer-Encoding : chunked\r\n\r\n'
                     b'%x\r\n%s\r\n0\r\n\r\n' % (len(SMUGGLED), SMUGGLED)
                     + SMUGGLED)

    def test_any_whitespace_between_a_name_and_its_colon(self):
        cases = [
            # The request a trimming proxy sees has SMUGGLED as its body.
            ('Content-Length, space',
             b'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : %d\r\n'
             b'\r\n' % len(SMUGGLED) + SMUGGLED),
            ('Content-Length, tab',
             b'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length\t: %d\r\n'
             b'\r\n' % len(SMUGGLED) + SMUGGLED),
            ('Host, space', b'GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n'
             + SMUGGLED),
            ('another header, space and tab',
             b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad \t : 1\r\n\r\n'
             + SMUGGLED),
        ]
        for name, raw in cases:
            with self.subTest(name):
                self.refused(raw)

    def test_a_content_length_with_a_sign(self):
        for value in (b'+5', b'+0'):
            with self.subTest(value):
                self.refused(b'GET /healthz HTTP/1.1\r\nHost: x\r\n'
                             b'Content-Length: ' + value + b'\r\n\r\n'
                             b'hello' + SMUGGLED)

    def test_http_1_1_without_host(self):
        # HTTP/1.0 needs none: still served.
        with w.Connection(self.srv.port) as c:
            r = c.request('GET', '/healthz', host=None, version='HTTP/1.0')
            self.assertEqual(r.status, 200, r)
        self.refused(b'GET /healthz HTTP/1.1\r\n\r\n' + SMUGGLED)
        self.refused(w.build_request('POST', WEBHOOK, w.vector('v1'), [
            ('Content-Type', w.JSON_TYPE), ('ms-signature', w.V1_SIGNATURE)],
            host=None))


# ---- --max-notifications -----------------------------------------------------

def many(n):
    return w.delivery(notifications=[{'Action': 'a1', 'n': i}
                                     for i in range(n)], crlf=False)


class MaxNotifications(unittest.TestCase):
    def test_default_is_1000(self):
        with w.Server(['--no-enrollments', '--handler', 'noop'],
                      env=ENV) as srv:
            r = w.post(srv.port, many(1000), V1_SECRET)
            self.assertEqual(r.status, 200, r)
            r = w.post(srv.port, many(1001), V1_SECRET)
            self.assertEqual(r.status, 413, r)
            one_line_reason(self, r, 'notifications')

    def test_the_option(self):
        with w.Server(['--max-notifications', '3'], env=ENV) as srv:
            self.assertEqual(w.post(srv.port, many(3), V1_SECRET).status,
                             200)
            r = w.post(srv.port, many(4), V1_SECRET)
            self.assertEqual(r.status, 413, r)
            one_line_reason(self, r, 'notifications')


# ---- 8. files ------------------------------------------------------------------

def with_umask(mask):
    """whr serve started with umask @mask."""
    return ['sh', '-c', 'umask %03o; exec "$0" "$@"' % mask, w.whr_bin(),
            'serve']


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def start_refused(test, args, env=ENV, timeout=5):
    """Start whr serve ARGS, which must stop by itself: returns (status,
    stderr). One still running after @timeout s is killed and fails."""
    with tempfile.TemporaryDirectory(prefix='whr-refuse-') as cwd:
        p = subprocess.Popen(w.command('whr', ['--listen', '127.0.0.1:0',
                                               *args]),
                             env=w.minimal_env(env), cwd=cwd,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = p.communicate(timeout=w.slow(timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            test.fail('whr started instead of refusing:\n'
                      + err.decode('utf-8', 'replace'))
    return p.returncode, err.decode('utf-8', 'replace')


class Files(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix='whr-files-')
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        os.chmod(self.tmp, 0o755)

    def make_inbox(self, data):
        """A data folder with an inbox holding one delivery."""
        with w.Server(['--data-dir', data], env=ENV) as srv:
            self.assertEqual(w.post(srv.port, w.delivery(),
                                    V1_SECRET).status, 200)

    def test_the_data_folder_whr_creates_is_0700(self):
        for mask in (0o022, 0o000):
            with self.subTest(umask='%03o' % mask):
                data = os.path.join(self.tmp, 'new-%03o' % mask)
                with w.Server(['--data-dir', data], env=ENV,
                              program=with_umask(mask)):
                    self.assertEqual(mode_of(data), 0o700)

    def test_inbox_files_are_0600_whatever_the_umask_and_folder(self):
        for mask in (0o022, 0o000):
            with self.subTest(umask='%03o' % mask):
                data = os.path.join(self.tmp, 'open-%03o' % mask)
                os.mkdir(data)
                os.chmod(data, 0o755)   # made by hand, readable by all
                with w.Server(['--data-dir', data], env=ENV,
                              program=with_umask(mask)) as srv:
                    r = w.post(srv.port, w.delivery(), V1_SECRET)
                    self.assertEqual(r.status, 200, r)
                    modes = {f: '%04o' % mode_of(os.path.join(data, f))
                             for f in DB_FILES}
                self.assertEqual(modes, {f: '0600' for f in DB_FILES})

    def assert_refused_link(self, data, name):
        rc, err = start_refused(self, ['--data-dir', data])
        self.assertEqual(rc, 1, err)
        self.assertIn(name, err)
        self.assertRegex(err, r'(?i)symbolic link|symlink', err)

    def test_a_symlinked_database_is_refused(self):
        # Dangling: the target must not be created.
        data = os.path.join(self.tmp, 'dangling')
        os.mkdir(data, 0o700)
        target = os.path.join(self.tmp, 'elsewhere.sqlite')
        os.symlink(target, os.path.join(data, 'inbox.sqlite'))
        self.assert_refused_link(data, 'inbox.sqlite')
        self.assertFalse(os.path.lexists(target),
                         'whr created the target of the link')
        # To a real inbox: refused all the same, the file untouched.
        real = os.path.join(self.tmp, 'real')
        self.make_inbox(real)
        data = os.path.join(self.tmp, 'to-real')
        os.mkdir(data, 0o700)
        os.symlink(os.path.join(real, 'inbox.sqlite'),
                   os.path.join(data, 'inbox.sqlite'))
        with open(os.path.join(real, 'inbox.sqlite'), 'rb') as f:
            before = f.read()
        self.assert_refused_link(data, 'inbox.sqlite')
        with open(os.path.join(real, 'inbox.sqlite'), 'rb') as f:
            self.assertEqual(f.read(), before)

    def test_a_symlinked_wal_or_shm_is_refused(self):
        for suffix in ('-wal', '-shm'):
            with self.subTest(suffix):
                data = os.path.join(self.tmp, 'link' + suffix)
                self.make_inbox(data)
                name = 'inbox.sqlite' + suffix
                path = os.path.join(data, name)
                if os.path.lexists(path):
                    os.unlink(path)
                target = os.path.join(self.tmp, 'target' + suffix)
                os.symlink(target, path)
                self.assert_refused_link(data, name)
                self.assertFalse(os.path.lexists(target),
                                 'whr created the target of the link')

    @unittest.skipUnless(os.geteuid() == 0, 'needs root to mount')
    def test_whr_inbox_on_a_read_only_mount(self):
        # A read-only bind mount of the data folder: after a clean stop,
        # and after a kill -9 that left the last deliveries in the WAL.
        for how in ('stopped', 'killed'):
            with self.subTest(how):
                data = os.path.join(self.tmp, 'ro-' + how)
                with w.Server(['--data-dir', data, '--no-enrollments',
                               '--handler', 'noop'], env=ENV) as srv:
                    for _ in range(3):
                        self.assertEqual(w.post(srv.port, w.delivery(),
                                                V1_SECRET).status, 200)
                    if how == 'killed':
                        srv.kill()
                        srv.returncode = -9
                        srv.checked = True
                mnt = os.path.join(self.tmp, 'mnt-' + how)
                os.mkdir(mnt)
                subprocess.run(['mount', '--bind', data, mnt], check=True)
                self.addCleanup(subprocess.run, ['umount', '-l', mnt])
                subprocess.run(['mount', '-o', 'remount,bind,ro', mnt],
                               check=True)
                with self.assertRaises(OSError):
                    open(os.path.join(mnt, 'probe'), 'w').close()
                rc, out, err = w.run_whr(['inbox', '--data-dir', mnt,
                                          '--format', 'json', 'stats'])
                self.assertEqual(rc, 0, out + err)
                self.assertEqual(json.loads(out)['deliveries'], 3, out)
                rc, out, err = w.run_whr(['inbox', '--data-dir', mnt,
                                          'stats'])
                self.assertEqual(rc, 0, out + err)
                rc, out, err = w.run_whr(['inbox', '--data-dir', mnt,
                                          '--format', 'json', 'list'])
                self.assertEqual(rc, 0, out + err)
                self.assertEqual(len(json.loads(out)), 3, out)


# ---- servers restarted on one port -------------------------------------------

class RestartPort(unittest.TestCase):
    def test_a_restart_port_is_outside_the_ephemeral_range(self):
        # Between a kill -9 and the restart, connections on the machine
        # take source ports from the ephemeral range; the restart port
        # is never one of them.
        low, high = w.ephemeral_range()
        port = w.restart_port()
        self.assertFalse(low <= port <= high, (port, low, high))
        srv = w.Server(env=ENV, listen=['127.0.0.1:%d' % port])
        srv.kill()
        srv.cleanup()
        with socket.socket() as other:
            other.bind(('127.0.0.1', 0))
            other.listen(512)
            clients = []
            try:
                for _ in range(300):
                    c = socket.create_connection(other.getsockname())
                    clients.append(c)
                    self.assertNotEqual(c.getsockname()[1], port)
                with w.Server(env=ENV,
                              listen=['127.0.0.1:%d' % port]) as srv:
                    self.assertEqual(srv.port, port)
            finally:
                for c in clients:
                    c.close()


if __name__ == '__main__':
    w.main()
