"""Running whr (or the recorder, or a documentation example) and checking
its exit status and its log."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from .environment import (WRAPPER, _required_env, minimal_env, recorder_bin,
                          slow, whr_bin)
from .secrecy import assert_nothing_secret, program_lines, secrets_of
from .records import Record
from .http import Connection


def program_path(program):
    return recorder_bin() if program == 'recorder' else whr_bin()


def command(program, args):
    """The command line: whr serve ARGS, recorder ARGS, or the example
    program of docs/inbox.md (doc-inbox) with ARGS; a list is a program
    given by its own argv (an installed whr: [path, 'serve'])."""
    if isinstance(program, (list, tuple)):
        return [*WRAPPER, *program, *args]
    if program == 'recorder':
        return [*WRAPPER, recorder_bin(), *args]
    if program == 'whr-raw':
        return [*WRAPPER, whr_bin(), *args]
    if program == 'doc-inbox':
        return [*WRAPPER, _required_env('WHR_TEST_DOC_INBOX'), *args]
    return [*WRAPPER, whr_bin(), 'serve', *args]


def run_whr(args, env=None, timeout=10, program='whr-raw', check_secrets=True,
            without_root_file_access=False):
    """Run a command that is expected to exit by itself (start-up errors,
    --help). @args follow the program name: ['serve', '--nosuch'] for
    whr; program='serve' puts 'serve' in front, program='recorder' runs
    the recorder. Returns (exit status, stdout, stderr without the
    wrapper's lines). without_root_file_access: when we are root, the
    program runs without the capabilities that let root read any file
    (setpriv from util-linux), so that file permissions apply to it."""
    argv = command(program, args)
    if without_root_file_access and os.geteuid() == 0:
        argv = ['setpriv', '--bounding-set',
                '-dac_override,-dac_read_search'] + argv
    with tempfile.TemporaryDirectory(prefix='whr-run-') as tmp:
        p = subprocess.run(argv, env=minimal_env(env),
                           cwd=tmp, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=slow(timeout))
    out = p.stdout.decode('utf-8', 'replace')
    # The program's own lines: a wrapper's (valgrind's) are dropped; they
    # echo the command line, and valgrind reports errors through the exit
    # status anyway.
    err = ''.join(l + '\n' for l in
                  program_lines(p.stderr.decode('utf-8', 'replace')))
    if check_secrets:
        secrets = secrets_of(env, args)
        assert_nothing_secret(out, secrets, 'standard output')
        assert_nothing_secret(err, secrets, 'standard error')
    return p.returncode, out, err


_LISTEN = re.compile(r'listening on (\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d+)')
_READY = re.compile(r'whr \S+ ready:')


class ServerError(AssertionError):
    pass


class Server:
    """A running `whr serve` (or recorder) on 127.0.0.1 port 0.

        with Server(env={'MS_WebHookReceiverSecret_Custom': S}) as srv:
            r = post(srv.port, body, S)

    Leaving the block stops it with SIGTERM and checks its exit status is
    0 and that its log holds no secret and no sent MAC.
    """

    def __init__(self, args=(), env=None, listen=('127.0.0.1:0',),
                 program='whr', record=False, secrets=(), start=True,
                 ready_timeout=10):
        self.args = list(args)
        self.listen = list(listen) if listen else []
        self.env = dict(env or {})
        self.program = program
        self.proc = None
        self.ports = []
        self.addresses = []
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-test-')
        self.log_path = os.path.join(self.tmp.name, 'stderr.log')
        self.out_path = os.path.join(self.tmp.name, 'stdout.log')
        self.record_path = None
        if record or program == 'recorder':
            self.record_path = os.path.join(self.tmp.name, 'record.txt')
            self.env.setdefault('WHR_RECORD', self.record_path)
            self.record_path = self.env['WHR_RECORD']
        self.ready_timeout = ready_timeout
        self.returncode = None
        self.checked = False
        full_args = []
        for addr in self.listen:
            full_args += ['--listen', addr]
        self.full_args = full_args + self.args
        self.secrets = secrets_of(self.env, self.full_args) | set(secrets)
        if start:
            self.start()

    # -- process --

    def start(self):
        self._err = open(self.log_path, 'wb')
        self._out = open(self.out_path, 'wb')
        self.proc = subprocess.Popen(
            command(self.program, self.full_args), env=minimal_env(self.env),
            cwd=self.tmp.name, stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=self._err)
        deadline = time.monotonic() + slow(self.ready_timeout)
        while True:
            text = self.log()
            if _READY.search(text):
                break
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                self.cleanup()
                raise ServerError('%s exited with status %d before it was '
                                  'ready:\n%s' % (self.program,
                                                  self.returncode, text))
            if time.monotonic() > deadline:
                self.cleanup()
                raise ServerError('%s was not ready within %.0f s:\n%s'
                                  % (self.program, slow(self.ready_timeout),
                                     text))
            time.sleep(0.01)
        for m in _LISTEN.finditer(text[:_READY.search(text).start()]):
            host = m.group(1).strip('[]')
            self.addresses.append((host, int(m.group(2))))
            self.ports.append(int(m.group(2)))
        if not self.ports:
            self.cleanup()
            raise ServerError('no "listening on" line:\n' + text)
        return self

    @property
    def port(self):
        return self.ports[0]

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=10):
        """Wait for the process to exit; returns its status, or None when
        it is still running after @timeout seconds."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close_files()
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=10, expect_status=0):
        """Signal the server, wait for it and check how it ended. Returns
        the whole log."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        status = self.wait_exit(slow(timeout))
        if status is None:
            self.kill()
            raise ServerError('%s did not exit within %.0f s of signal %d:\n'
                              '%s' % (self.program, slow(timeout), sig,
                                      self.log()))
        return self.check_exit(expect_status)

    def check_exit(self, expect_status=0):
        """Check the exit status of a server that has exited, and that
        nothing secret was written. Returns the whole log."""
        self.checked = True
        text = self.log()
        if self.returncode != expect_status:
            raise ServerError('%s exited with status %d, expected %d:\n%s'
                              % (self.program, self.returncode,
                                 expect_status, text))
        assert_nothing_secret(text, self.secrets, 'server log')
        assert_nothing_secret(self.stdout(), self.secrets, 'server stdout')
        return text

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, '_err', None), getattr(self, '_out', None)):
            if f is not None and not f.closed:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc is None:
                pass
            elif exc_type is None:
                if self.returncode is None:
                    self.stop()
                elif not self.checked:
                    self.check_exit(0)
            else:
                self.kill()
                sys.stderr.write('---- %s log ----\n%s---- end of log ----\n'
                                 % (self.program, self.log()))
        finally:
            self.cleanup()
        return False

    def cleanup(self):
        self.kill()
        self.tmp.cleanup()

    # -- log --

    def log_bytes(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read()
        except FileNotFoundError:
            return b''

    def log(self, since=0):
        return self.log_bytes()[since:].decode('utf-8', 'replace')

    def stdout(self):
        try:
            with open(self.out_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def mark(self):
        """A position in the log, for log(since=...) and wait_log()."""
        return len(self.log_bytes())

    def lines(self, since=0):
        return program_lines(self.log(since))

    def wait_log(self, pattern, since=0, timeout=5, count=1):
        """Poll the log (from @since) until @pattern (a regex) matched
        @count times; returns the last match. Fails after @timeout s."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + slow(timeout)
        while True:
            text = self.log(since)
            found = list(rx.finditer(text))
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline:
                raise AssertionError('log never matched %r (%d of %d '
                                     'times) within %.1f s:\n%s'
                                     % (pattern, len(found), count,
                                        slow(timeout), text))
            time.sleep(0.01)

    def request_line(self, since=0, timeout=5, pattern=r'request method='):
        """The next per-request log line after @since (text format)."""
        m = self.wait_log(r'(?m)^.*' + pattern + r'.*$', since, timeout)
        return m.group(0)

    # -- recorder --

    def _read_records(self):
        try:
            with open(self.record_path, 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            return []
        # A read can see a line the recorder is still writing (one
        # write(2) per line is not atomic against a reader): only whole
        # lines count; the rest is read again at the next poll.
        return [Record.parse(l) for l in data.split(b'\n')[:-1] if l]

    def records(self, expect=None, timeout=10):
        """The recorder's lines, parsed (see Record). Handlers run from
        the inbox after the answer: with @expect, wait until there are at
        least that many, then a moment more, so that an extra call the
        test does not expect shows up too."""
        deadline = time.monotonic() + slow(timeout)
        recs = self._read_records()
        if expect is None:
            return recs
        while len(recs) < expect:
            if time.monotonic() > deadline:
                raise AssertionError('%d recorder lines, expected %d, '
                                     'within %.1f s' % (len(recs), expect,
                                                        slow(timeout)))
            time.sleep(0.01)
            recs = self._read_records()
        time.sleep(0.1)
        return self._read_records()


def main():
    unittest.main(verbosity=2)


@contextlib.contextmanager
def cleaned_up_on_error(*things):
    """For a setUpClass that made @things (anything with cleanup(): a
    Server is killed by it): when the block raises, tearDownClass will not
    run, so they are removed here before the error goes on."""
    try:
        yield
    except BaseException:
        for thing in things:
            thing.cleanup()
        raise


def stop_and_clean(srv, *more):
    """Stop a class's server (checking how it ended), then remove its
    files and those of @more (anything with cleanup()) even when the stop
    failed: the end of every tearDownClass that owns a server."""
    try:
        srv.stop()
    finally:
        srv.cleanup()
        for m in more:
            m.cleanup()


def serve_refused(*args, env=None):
    """whr serve @args, which must refuse to start with a configuration
    error (exit status 2): what it said on stderr."""
    rc, _, err = run_whr(['serve', *args], env=env)
    if rc != 2:
        raise AssertionError('whr serve %s: exit status %d, not 2:\n%s'
                             % (' '.join(args), rc, err))
    return err


@contextlib.contextmanager
def with_both_connections_taken(env):
    """whr serve with room for two connections (--max-connections 2),
    and two connections to it: (srv, a, b), a and b closed after."""
    with Server(['--max-connections', '2'], env=env) as srv:
        a = Connection(srv.port)
        b = Connection(srv.port)
        try:
            yield srv, a, b
        finally:
            a.close()
            b.close()


class ServerTestCase(unittest.TestCase):
    """Tests that share one server, started once for the class; its exit
    status and log are checked when the class is done."""

    server_args = ()
    server_env = {}
    server_program = 'whr'

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(cls.server_args, env=cls.server_env,
                         program=cls.server_program)

    @classmethod
    def tearDownClass(cls):
        stop_and_clean(cls.srv)
