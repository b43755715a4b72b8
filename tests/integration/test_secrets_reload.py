"""Secrets reloaded while whr serves (issue 14): on SIGHUP, and by
itself when a secrets file changes (written in place, replaced by a
rename, or through a swapped symbolic link as Kubernetes does), the
current and the previous file together; a bad new set is refused in one
log line and the old one kept; no connection is dropped. And the two
names of the secrets file's variable."""

import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import JSON_TYPE, WEBHOOK  # noqa: E402

SA = w.secret('reload-A')
SB = w.secret('reload-B')
SC = w.secret('reload-C')
T2 = w.secret('reload-tenant2')
ALL = (SA, SB, SC, T2)
MS = 'MS_WebHookReceiverSecret_Custom'
MS_FILE = 'MS_WebHookReceiverSecret_Custom_FILE'

RELOADED = (r'(?m)^\S+ info +secrets reloaded \((?P<why>[^)]*)\): '
            r'(?P<ids>\d+) receiver id\(s\), (?P<previous>\d+) with a '
            r'previous secret$')
REFUSED = (r'(?m)^\S+ error +secrets not reloaded \((?P<why>[^)]*)\), '
           r'the (?P<ids>\d+) receiver id\(s\) in use are kept: '
           r'(?P<reason>.+)$')
# Longer than the watcher takes to notice a change and act on it (two
# looks, a second apart), with room for a loaded machine.
NOTICE = 6


def post(port, secret, path=WEBHOOK):
    """A delivery signed with @secret: (status, its Id)."""
    body = w.delivery()
    did = re.search(rb'"Id": "([0-9a-f]{32})"', body).group(1).decode()
    return w.post(port, body, secret, path=path).status, did


def request_line(srv, did, since=0):
    """The log line of the request that carried delivery @did."""
    return srv.wait_log(r'(?m)^.*request method=.*delivery=%s.*$' % did,
                        since=since).group(0)


class Flow(threading.Thread):
    """Deliveries signed with one secret, one after another on one
    kept-alive connection, until stopped: every answer must be 200 and
    the connection must stay open."""

    def __init__(self, port, secret):
        super().__init__(daemon=True)
        self.port, self.secret = port, secret
        self.statuses = []
        self.error = None
        self.stopping = threading.Event()
        self.progress = threading.Condition()

    def run(self):
        try:
            with w.Connection(self.port) as c:
                while not self.stopping.is_set():
                    body = w.delivery()
                    r = c.request('POST', WEBHOOK, body, [
                        ('Content-Type', JSON_TYPE),
                        ('ms-signature', w.sign(self.secret, body))])
                    with self.progress:
                        self.statuses.append(r.status)
                        self.progress.notify_all()
                    if (r.header('Connection') or '').lower() == 'close':
                        raise AssertionError('the server closes the '
                                             'connection: %r' % r)
                    time.sleep(0.02)
        except Exception as e:      # reported by stop()
            self.error = e
        with self.progress:
            self.progress.notify_all()

    def wait_for(self, n):
        """Until @n more answers came."""
        with self.progress:
            target = len(self.statuses) + n
            ok = self.progress.wait_for(
                lambda: len(self.statuses) >= target or
                self.error is not None or not self.is_alive(),
                timeout=w.slow(10))
        if self.error is not None:
            raise self.error
        if not ok:
            raise AssertionError('deliveries stopped flowing')

    def stop(self, test):
        self.stopping.set()
        self.join(w.slow(10))
        if self.error is not None:
            raise self.error
        test.assertEqual(set(self.statuses), {200}, self.statuses)


class Files:
    """The secrets files of a test: plain files in a folder, or
    Kubernetes' layout, where each name is a link through `..data`, a
    link to a folder swapped by a rename."""

    def __init__(self, linked=False):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-reload-')
        self.dir = self.tmp.name
        self.linked = linked
        self.version = 0
        self.current = os.path.join(self.dir, 'secrets')
        self.previous = os.path.join(self.dir, 'previous')

    def cleanup(self):
        self.tmp.cleanup()

    def args(self):
        return ['--secrets-file', self.current,
                '--previous-secrets-file', self.previous]

    def start(self, current, previous=''):
        if self.linked:
            self.swap(current, previous)
            for name in ('secrets', 'previous'):
                os.symlink(os.path.join('..data', name),
                           os.path.join(self.dir, name))
        else:
            self.write_in_place(self.current, current)
            self.write_in_place(self.previous, previous)

    @staticmethod
    def write_in_place(path, text):
        with open(path, 'w') as f:     # truncated, then written
            f.write(text)

    @staticmethod
    def write_by_rename(path, text):
        tmp = path + '.new'
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, path)

    def swap(self, current, previous):
        """A new folder of both files, put in place with one rename of
        the `..data` link; the old folder goes (as kubelet does)."""
        self.version += 1
        new = '..v%d' % self.version
        os.mkdir(os.path.join(self.dir, new))
        for name, text in (('secrets', current), ('previous', previous)):
            with open(os.path.join(self.dir, new, name), 'w') as f:
                f.write(text)
        link = os.path.join(self.dir, '..data')
        old = os.readlink(link) if os.path.islink(link) else None
        os.symlink(new, link + '_tmp')
        os.replace(link + '_tmp', link)
        if old is not None:
            shutil.rmtree(os.path.join(self.dir, old))

    def put(self, how, current, previous):
        """Both files, previous first (the order the docs give: each
        step is a valid set)."""
        if how == 'swap':
            self.swap(current, previous)
            return
        write = (self.write_by_rename if how == 'rename'
                 else self.write_in_place)
        write(self.previous, previous)
        write(self.current, current)


class Rotation(unittest.TestCase):
    """A -> B: B becomes current, A previous, then A goes; deliveries
    signed with A flow throughout, on one connection."""

    def rotate(self, how, trigger):
        files = Files(linked=(how == 'swap'))
        self.addCleanup(files.cleanup)
        files.start(SA + '\ntenant2=' + T2 + '\n')
        with w.Server(files.args(), secrets=ALL) as srv:
            flow = Flow(srv.port, SA)
            flow.start()
            try:
                flow.wait_for(3)
                mark = srv.mark()
                files.put(how, SB + '\ntenant2=' + T2 + '\n', SA + '\n')
                if trigger == 'SIGHUP':
                    srv.send_signal(signal.SIGHUP)
                m = srv.wait_log(RELOADED, since=mark, timeout=NOTICE)
                # Right after the line: B verifies, A as the previous.
                status, did = post(srv.port, SB)
                self.assertEqual(status, 200)
                self.assertNotIn('secret=', request_line(srv, did, mark))
                status, did = post(srv.port, SA)
                self.assertEqual(status, 200)
                self.assertEqual(w.log_fields(request_line(srv, did, mark))
                                 .get('secret'), 'previous')
                self.assertEqual(post(srv.port, T2,
                                      WEBHOOK + '/tenant2')[0], 200)
                self.assertEqual(post(srv.port, SC)[0], 400)
                self.assertEqual((m.group('ids'), m.group('previous')),
                                 ('2', '1'))
                if trigger == 'SIGHUP':
                    self.assertEqual(m.group('why'), 'SIGHUP')
                else:
                    self.assertEqual(m.group('why'),
                                     '%s changed' % files.current)
                flow.wait_for(3)
                # Once read, a change is not read again.
                time.sleep(1.5)
                self.assertEqual(len(re.findall(RELOADED,
                                                srv.log(mark))), 1,
                                 srv.log(mark))
            finally:
                flow.stop(self)

            # The rotation ends: A is no more.
            mark = srv.mark()
            files.put(how, SB + '\ntenant2=' + T2 + '\n', '')
            if trigger == 'SIGHUP':
                srv.send_signal(signal.SIGHUP)
            m = srv.wait_log(RELOADED, since=mark, timeout=NOTICE)
            self.assertEqual((m.group('ids'), m.group('previous')),
                             ('2', '0'))
            self.assertEqual(post(srv.port, SA)[0], 400)
            self.assertEqual(post(srv.port, SB)[0], 200)
            self.assertNotIn('shutting down', srv.log(mark))

    def test_sighup(self):
        self.rotate('in place', 'SIGHUP')

    def test_a_file_written_in_place(self):
        self.rotate('in place', 'watch')

    def test_a_file_replaced_by_a_rename(self):
        self.rotate('rename', 'watch')

    def test_files_behind_a_swapped_link(self):
        self.rotate('swap', 'watch')

    def test_sighup_with_files_behind_a_swapped_link(self):
        self.rotate('swap', 'SIGHUP')

    def test_an_idle_kept_alive_connection_survives(self):
        files = Files()
        self.addCleanup(files.cleanup)
        files.start(SA)
        with w.Server(files.args(), secrets=ALL) as srv:
            with w.Connection(srv.port) as c:
                body = w.delivery()
                headers = [('Content-Type', JSON_TYPE),
                           ('ms-signature', w.sign(SA, body))]
                self.assertEqual(c.request('POST', WEBHOOK, body,
                                           headers).status, 200)
                mark = srv.mark()
                files.put('rename', SB, SA)
                srv.wait_log(RELOADED, since=mark, timeout=NOTICE)
                srv.send_signal(signal.SIGHUP)
                srv.wait_log(RELOADED, since=mark, timeout=NOTICE, count=2)
                self.assertFalse(c.is_closed_now())
                body = w.delivery()
                headers = [('Content-Type', JSON_TYPE),
                           ('ms-signature', w.sign(SB, body))]
                r = c.request('POST', WEBHOOK, body, headers)
                self.assertEqual(r.status, 200)
                self.assertNotEqual((r.header('Connection') or '').lower(),
                                    'close')


class Refused(unittest.TestCase):
    """A new set that cannot be used is refused in one line that says
    why (never with a secret in it); the keys in use stay; the next good
    set is taken."""

    def setUp(self):
        self.files = Files()
        self.addCleanup(self.files.cleanup)
        self.files.start(SA + '\ntenant2=' + T2 + '\n')

    def refused(self, srv, change, *words, trigger='watch'):
        mark = srv.mark()
        change()
        if trigger == 'SIGHUP':
            srv.send_signal(signal.SIGHUP)
        m = srv.wait_log(REFUSED, since=mark, timeout=NOTICE)
        self.assertEqual(m.group('ids'), '2')
        for word in words:
            self.assertIn(word, m.group('reason'))
        # The old set verifies.
        self.assertEqual(post(srv.port, SA)[0], 200)
        self.assertEqual(post(srv.port, T2, WEBHOOK + '/tenant2')[0], 200)
        self.assertEqual(post(srv.port, SB)[0], 400)
        # Said once, not at every look.
        time.sleep(1.5)
        text = srv.log(mark)
        self.assertEqual(len(re.findall(REFUSED, text)), 1, text)
        self.assertIsNone(re.search(RELOADED, text), text)
        error_lines = [l for l in w.program_lines(text) if ' error ' in l]
        self.assertEqual(len(error_lines), 1, text)
        return m

    def restored(self, srv):
        mark = srv.mark()
        self.files.put('rename', SB + '\ntenant2=' + T2 + '\n', SA)
        srv.wait_log(RELOADED, since=mark, timeout=NOTICE)
        self.assertEqual(post(srv.port, SB)[0], 200)
        self.assertEqual(post(srv.port, SA)[0], 200)
        self.files.put('rename', SA + '\ntenant2=' + T2 + '\n', '')
        srv.wait_log(RELOADED, since=mark, timeout=NOTICE, count=2)

    def test_bad_sets(self):
        current, previous = self.files.current, self.files.previous
        cases = [
            ('a secret too short',
             lambda: self.files.write_by_rename(current, SB[:20]),
             [current, 'entry 1', '20 characters']),
            ('a parse error',
             lambda: self.files.write_by_rename(
                 current, '%s\nx=%s=y\n' % (SB, SC)),
             [current, 'entry 2', "more than one '='"]),
            ('no secret left',
             lambda: self.files.write_in_place(current, '\n \n'),
             [current, 'holds no secret']),
            ('an unreadable file', lambda: os.remove(current),
             [current, 'No such file']),
            ('a folder instead of a file',
             lambda: (os.remove(current), os.mkdir(current)),
             [current, 'not a regular file']),
            ('a previous secret without a current one',
             lambda: self.files.write_by_rename(previous,
                                                'tenant9=' + SC),
             [previous, 'tenant9', 'no current secret']),
            ('a duplicate id',
             lambda: self.files.write_by_rename(
                 current, '%s\ntenant2=%s\nTENANT2=%s' % (SA, T2, SB)),
             [current, 'configured twice']),
        ]
        with w.Server(self.files.args(), secrets=ALL) as srv:
            for name, change, words in cases:
                with self.subTest(name):
                    self.refused(srv, change, *words)
                    if os.path.isdir(current):
                        os.rmdir(current)
                    self.restored(srv)

    def test_sighup_refuses_too(self):
        with w.Server(self.files.args(), secrets=ALL) as srv:
            m = self.refused(srv, lambda: self.files.write_by_rename(
                self.files.current, SB[:31]), '31 characters',
                trigger='SIGHUP')
            self.assertEqual(m.group('why'), 'SIGHUP')
            self.assertIn('SIGHUP: nothing to reopen', srv.log())
            self.restored(srv)


class EnvironmentSecrets(unittest.TestCase):
    def test_the_variable_is_read_once(self):
        with w.Server(env={MS: SA}) as srv:
            mark = srv.mark()
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r'SIGHUP: nothing to reopen', since=mark)
            time.sleep(1.5)
            self.assertNotIn('secrets', srv.log(mark))
            self.assertEqual(post(srv.port, SA)[0], 200)

    def test_only_the_file_is_read_again(self):
        """The current secrets from the variable, the previous ones from
        a file: a change of the file is read, the variable's secrets
        stay (it was scrubbed from the environment at start)."""
        files = Files()
        self.addCleanup(files.cleanup)
        files.write_in_place(files.previous, '')
        with w.Server(['--previous-secrets-file', files.previous],
                      env={MS: '%s,tenant2=%s' % (SA, T2)},
                      secrets=ALL) as srv:
            self.assertEqual(post(srv.port, SC)[0], 400)
            mark = srv.mark()
            files.write_by_rename(files.previous, 'tenant2=' + SC)
            m = srv.wait_log(RELOADED, since=mark, timeout=NOTICE)
            self.assertEqual((m.group('ids'), m.group('previous')),
                             ('2', '1'))
            self.assertEqual(post(srv.port, SC, WEBHOOK + '/tenant2')[0],
                             200)
            self.assertEqual(post(srv.port, T2, WEBHOOK + '/tenant2')[0],
                             200)
            self.assertEqual(post(srv.port, SA)[0], 200)


class VariableNames(unittest.TestCase):
    def setUp(self):
        self.files = Files()
        self.addCleanup(self.files.cleanup)
        self.files.start(SA)

    def test_the_stock_name_with_FILE(self):
        with w.Server(env={MS_FILE: self.files.current},
                      secrets=ALL) as srv:
            self.assertEqual(post(srv.port, SA)[0], 200)
            mark = srv.mark()
            self.files.write_by_rename(self.files.current, SB)
            srv.wait_log(RELOADED, since=mark, timeout=NOTICE)
            self.assertEqual(post(srv.port, SB)[0], 200)
            self.assertEqual(post(srv.port, SA)[0], 400)

    def test_whr_secrets_file(self):
        with w.Server(env={'WHR_SECRETS_FILE': self.files.current}) as srv:
            self.assertEqual(post(srv.port, SA)[0], 200)

    def test_an_empty_one_is_unset(self):
        for env in ({MS_FILE: self.files.current, 'WHR_SECRETS_FILE': ''},
                    {MS_FILE: '', 'WHR_SECRETS_FILE': self.files.current}):
            with self.subTest(env=env):
                with w.Server(env=env) as srv:
                    self.assertEqual(post(srv.port, SA)[0], 200)

    def test_both_set_is_a_startup_error(self):
        other = os.path.join(self.files.dir, 'other')
        self.files.write_in_place(other, SB)
        for second in (self.files.current, other):
            with self.subTest(same=second == self.files.current):
                env = {MS_FILE: self.files.current,
                       'WHR_SECRETS_FILE': second}
                rc, out, err = w.run_whr(['--listen', '127.0.0.1:0'], env,
                                         program='serve')
                self.assertEqual(rc, 2, err)
                self.assertIn('WHR_SECRETS_FILE', err)
                self.assertIn(MS_FILE, err)
                self.assertIn('both set', err)
                self.assertNotIn('ready', err)

    def test_help_names_both(self):
        rc, out, err = w.run_whr(['serve', '--help'])
        self.assertEqual(rc, 0, err)
        self.assertIn('WHR_SECRETS_FILE or %s' % MS_FILE,
                      re.sub(r'\s+', ' ', out))


if __name__ == '__main__':
    w.main()
