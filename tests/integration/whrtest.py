"""Shared harness of whr's integration tests.

The tests drive the real `whr serve` binary (WHR_BIN), or the recorder, a
program of ours that links libwhr as a customer would (WHR_TEST_RECORDER),
over real sockets, with Python's standard library only.

Environment:
  WHR_BIN            the whr binary
  WHR_TEST_RECORDER  the recorder program (tests/integration/recorder.c)
  WHR_TEST_DATA      tests/data
  WHR_TEST_WRAPPER   optional command put in front of every program, split
                     like a shell would, e.g.
                     "valgrind --error-exitcode=99 --leak-check=full"

Every server is started with a minimal environment (PATH and the sanitizer
settings, plus what the test passes), so a developer's own
MS_WebHookReceiverSecret_Custom or WHR_* variables never leak in.
"""

import binascii
import hashlib
import hmac
import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

# ---- environment ----------------------------------------------------------

WRAPPER = shlex.split(os.environ.get('WHR_TEST_WRAPPER', ''))

# Variables passed through to the programs under test: never secrets.
PASSTHROUGH_ENV = ('PATH', 'LD_LIBRARY_PATH', 'ASAN_OPTIONS', 'UBSAN_OPTIONS',
                   'LSAN_OPTIONS', 'MSAN_OPTIONS', 'TSAN_OPTIONS',
                   'VALGRIND_LIB', 'MALLOC_PERTURB_', 'MALLOC_CHECK_')

WEBHOOK = '/api/webhooks/incoming/custom'
JSON_TYPE = 'application/json; charset=utf-8'


def _required_env(name):
    # A missing input is a failure, not a skip: a suite that cannot find
    # the programs it tests must not pass (STYLE.md §9, guards).
    value = os.environ.get(name)
    if not value:
        raise RuntimeError('%s is not set (run through meson test)' % name)
    if not os.path.exists(value):
        raise RuntimeError('%s=%s does not exist' % (name, value))
    return value


def whr_bin():
    return _required_env('WHR_BIN')


def recorder_bin():
    return _required_env('WHR_TEST_RECORDER')


def data_path(*parts):
    return os.path.join(_required_env('WHR_TEST_DATA'), *parts)


def wrapped():
    """True when the programs run under WHR_TEST_WRAPPER (valgrind...)."""
    return bool(WRAPPER)


# A program under valgrind runs 10 to 50 times slower: waits for it grow,
# the limits a test asserts on results do not.
SLOW = 20.0 if WRAPPER else 1.0


def slow(seconds):
    """A wait of @seconds, longer under a wrapper."""
    return seconds * SLOW


def skip_if_wrapped(reason):
    """Skip a test whose point is tight timing when a wrapper slows the
    programs down (the test still runs in the normal suite)."""
    return unittest.skipIf(wrapped(), 'under WHR_TEST_WRAPPER: ' + reason)


def timing_bound(seconds):
    """An upper bound on a measured duration: as given normally, relaxed
    under a wrapper."""
    return seconds * (8.0 if WRAPPER else 1.0)


def minimal_env(extra=None):
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    env.setdefault('PATH', '/usr/bin:/bin')
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


# ---- vectors and signing --------------------------------------------------

V0_SECRET = '123456789012345678901234567890123456789012345678'
V1_SECRET = '0123456789abcdef0123456789abcdef'
V0_SIGNATURE = ('sha256=DCDEB62502988CDEDE464AF6A97566D6'
                '1288C446CFC46F74F341E11173FF30A1')
V1_SIGNATURE = ('sha256=11BDD3E02E9853644DE5CAF0415E089C'
                '871445D509B31388F5A7E5CB705BA8B5')
V2_SIGNATURE = ('sha256=1F44ABC47772A0092ACC9CE4CE810210'
                '843578AF4FA97F7EE71E57044EB8582F')


def vector(name):
    """The exact bytes of tests/data/vectors/NAME.body.bin."""
    with open(data_path('vectors', name + '.body.bin'), 'rb') as f:
        return f.read()


def mac_hex(secret, body):
    """Uppercase hex HMAC-SHA256 of @body keyed with the UTF-8 @secret."""
    if isinstance(body, str):
        body = body.encode('utf-8')
    return hmac.new(secret.encode('utf-8'), body,
                    hashlib.sha256).hexdigest().upper()


def sign(secret, body):
    """The ms-signature header value the ASP.NET sender would send."""
    return 'sha256=' + mac_hex(secret, body)


def to_json_text(obj):
    """Indented as Newtonsoft.Json does it: 2 spaces, ': ', raw UTF-8."""
    return json.dumps(obj, indent=2, ensure_ascii=False)


RANDOM = object()


def delivery(id=RANDOM, attempt=1, notifications=None, properties=None,
             crlf=True):
    """A delivery body as the ASP.NET sender writes it: members Id,
    Attempt, Properties, Notifications in that order, indented with 2
    spaces, CRLF line ends (crlf=False: LF). The Id is 32 random hex
    digits unless given (the inbox drops a delivery whose Id it has
    seen); id=None leaves Id out."""
    obj = {}
    if id is RANDOM:
        id = os.urandom(16).hex()
    if id is not None:
        obj['Id'] = id
    obj['Attempt'] = attempt
    obj['Properties'] = properties if properties is not None else {}
    obj['Notifications'] = (notifications if notifications is not None
                            else [{'Action': 'a1'}])
    text = to_json_text(obj)
    if crlf:
        text = text.replace('\n', '\r\n')
    return text.encode('utf-8')


def notification_spans(body):
    """Byte spans (start, end) of the elements of the top-level
    "Notifications" array of a JSON @body, found by a small scanner that
    does not depend on the server's code."""
    i = body.index(b'"Notifications"')
    i = body.index(b'[', i) + 1
    spans = []
    depth = 0
    start = None
    in_string = False
    escape = False
    while i < len(body):
        c = body[i:i + 1]
        if in_string:
            if escape:
                escape = False
            elif c == b'\\':
                escape = True
            elif c == b'"':
                in_string = False
        elif c == b'"':
            in_string = True
        elif c in (b'{', b'['):
            if depth == 0:
                start = i
            depth += 1
        elif c in (b'}', b']'):
            if depth == 0:
                break   # the end of the Notifications array
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
        i += 1
    return spans


# ---- what must never be logged -------------------------------------------

# Every ms-signature value sent by this process: a full MAC must never
# appear in a log. Only long hex runs are kept (a MAC is 64 hex digits;
# delivery ids, which are logged, have 32).
SENT_MACS = set()
_HEX_RUN = re.compile(r'[0-9A-Fa-f]{48,}')


def _note_signature(value):
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    for run in _HEX_RUN.findall(value):
        SENT_MACS.add(run.lower())


def secrets_in_text(text):
    """The secrets of a secrets list (the MS_WebHookReceiverSecret_Custom
    format, commas or newlines between entries), as the receiver would
    read them, and every long part of a malformed entry too."""
    found = set()
    for entry in re.split(r'[,\r\n]', text):
        parts = [p.strip() for p in entry.split('=') if p.strip()]
        if len(parts) == 1:
            found.add(parts[0])
        elif len(parts) == 2:
            found.add(parts[1])
        else:
            found.update(parts[1:])
    # Short strings are not secrets anyone would configure, and would
    # match innocent text.
    return {s for s in found if len(s) >= 16}


SECRET_ENV = ('MS_WebHookReceiverSecret_Custom', 'WHR_PREVIOUS_SECRETS')
SECRET_FILE_ENV = ('WHR_SECRETS_FILE', 'WHR_PREVIOUS_SECRETS_FILE')
SECRET_FILE_FLAGS = ('--secrets-file', '--previous-secrets-file')


def secrets_of(env, args):
    """Every secret configured through @env or the secrets files named in
    @env or @args."""
    found = set()
    files = []
    env = env or {}
    for k in SECRET_ENV:
        if env.get(k):
            found |= secrets_in_text(env[k])
    for k in SECRET_FILE_ENV:
        if env.get(k):
            files.append(env[k])
    args = list(args)
    for i, a in enumerate(args):
        for flag in SECRET_FILE_FLAGS:
            if a == flag and i + 1 < len(args):
                files.append(args[i + 1])
            elif a.startswith(flag + '='):
                files.append(a[len(flag) + 1:])
    # The tools' own: whr send/probe/verify --secret, --secret-file and
    # WHR_SECRET hold one secret each, used as is.
    tool_secrets = []
    if env.get('WHR_SECRET'):
        tool_secrets.append(env['WHR_SECRET'])
    for i, a in enumerate(args):
        if a == '--secret' and i + 1 < len(args):
            tool_secrets.append(args[i + 1])
        elif a.startswith('--secret='):
            tool_secrets.append(a[len('--secret='):])
        elif a == '--secret-file' and i + 1 < len(args):
            try:
                with open(args[i + 1], 'rb') as f:
                    tool_secrets.append(f.read().decode('utf-8', 'replace')
                                        .rstrip('\r\n'))
            except OSError:
                pass
    # Only secrets long enough to be unmistakable in a log.
    found |= {t for t in tool_secrets if len(t.strip()) >= 8}
    for path in files:
        try:
            with open(path, 'rb') as f:
                found |= secrets_in_text(f.read().decode('utf-8', 'replace'))
        except OSError:
            pass
    return found


def assert_nothing_secret(text, secrets, what='output'):
    """Fail when @text holds a secret or a MAC this process sent."""
    low = text.lower()
    for s in secrets:
        if s in text:
            raise AssertionError('a configured secret (%d chars, starting '
                                 '%r) appears in the %s:\n%s'
                                 % (len(s), s[:4], what, text))
    for m in SENT_MACS:
        if m in low:
            raise AssertionError('a signature value sent by the test '
                                 '(%s...) appears in the %s:\n%s'
                                 % (m[:8], what, text))


# Lines a wrapper (valgrind) adds to the programs' standard error.
_WRAPPER_LINE = re.compile(r'^(==\d+==|--\d+--|\*\*\d+\*\*)')


def program_lines(text):
    """The lines of @text written by the program itself."""
    return [l for l in text.splitlines()
            if l and not (WRAPPER and _WRAPPER_LINE.match(l))]


# ---- running programs -----------------------------------------------------

def program_path(program):
    return recorder_bin() if program == 'recorder' else whr_bin()


def command(program, args):
    """The command line: whr serve ARGS, recorder ARGS, or the example
    program of docs/inbox.md (doc-inbox) with ARGS."""
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
        return [Record.parse(l) for l in data.split(b'\n') if l]

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


# ---- the recorder's lines -------------------------------------------------

_ESCAPE = re.compile(r'\\(x[0-9a-f]{2}|n|r|\\)')


def unescape(field):
    def one(m):
        s = m.group(1)
        if s == 'n':
            return '\n'
        if s == 'r':
            return '\r'
        if s == '\\':
            return '\\'
        return chr(int(s[1:], 16))
    return _ESCAPE.sub(one, field)


NONE = '(none)'


class Record:
    """One line of the recorder (see recorder.c for the format)."""

    FIELDS = ('handler', 'action', 'index', 'count', 'delivery', 'attempt',
              'receiver', 'course_id', 'email', 'users', 'p1', 'json40',
              'action_type', 'course_type', 'status_int', 'published',
              'received_at', 'json_len', 'json_hex', 'properties_hex')

    def __init__(self, raw, fields, paths):
        self.raw = raw
        self.fields = fields
        self.paths = paths

    @classmethod
    def parse(cls, line):
        text = line.decode('utf-8')
        parts = text.split('|')
        if parts[0] == 'destroy':
            return cls(text, {'handler': 'destroy', 'name': parts[1]}, [])
        if len(parts) < len(cls.FIELDS):
            raise AssertionError('short recorder line: %r' % text)
        fields = {k: unescape(v) for k, v in zip(cls.FIELDS, parts)}
        paths = []
        for p in parts[len(cls.FIELDS):]:
            kind, _, value = p.partition('=')
            paths.append((kind, unescape(value)))
        return cls(text, fields, paths)

    def __getattr__(self, name):
        try:
            return self.__dict__['fields'][name]
        except KeyError:
            raise AttributeError(name)

    @property
    def json(self):
        return binascii.unhexlify(self.fields['json_hex'])

    @property
    def properties(self):
        return binascii.unhexlify(self.fields['properties_hex'])

    def __repr__(self):
        return 'Record(%r)' % self.raw


# ---- HTTP over raw sockets ------------------------------------------------

class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] as received
        self.body = body

    def __iter__(self):
        """status, headers, body = request(...)"""
        return iter((self.status, self.headers, self.body))

    def header(self, name):
        """The first value of header @name (any case), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return '<Response %d %r %r>' % (self.status, self.headers,
                                         self.body[:200])


class Closed(Exception):
    """The server closed the connection before a whole response came."""


def _to_bytes(s):
    return s if isinstance(s, bytes) else s.encode('utf-8')


def build_request(method, path, body=b'', headers=(), host='127.0.0.1',
                  length=True, version='HTTP/1.1'):
    """The raw bytes of a request. Host and Content-Length are added
    unless @headers holds them (or length=False); a header may be given
    twice."""
    body = _to_bytes(body)
    names = {(_to_bytes(k)).lower() for k, _ in headers}
    lines = [b'%s %s %s' % (_to_bytes(method), _to_bytes(path),
                            _to_bytes(version))]
    if b'host' not in names and host is not None:
        lines.append(b'Host: ' + _to_bytes(host))
    for k, v in headers:
        if _to_bytes(k).lower() == b'ms-signature':
            _note_signature(v)
        lines.append(_to_bytes(k) + b': ' + _to_bytes(v))
    if (length and b'content-length' not in names and
            b'transfer-encoding' not in names and
            (body or method in ('POST', 'PUT', 'PATCH'))):
        lines.append(b'Content-Length: %d' % len(body))
    return b'\r\n'.join(lines) + b'\r\n\r\n' + body


class Connection:
    """One client connection with its own receive buffer."""

    def __init__(self, port, host='127.0.0.1', timeout=10, rcvbuf=None,
                 mss=None):
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.host = host
        self.timeout = slow(timeout)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        # Both before connect(), so that the server sees a small window
        # and small segments: its kernel then buffers little of a reply,
        # and a large reply stays in the server's hands until the client
        # reads it (a slow client).
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss is not None:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        self.sock.settimeout(self.timeout)
        try:
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.buf = b''
        self.eof = False

    def send(self, data):
        self.sock.sendall(_to_bytes(data))

    def send_request(self, method, path, body=b'', headers=(), **kw):
        self.send(build_request(method, path, body, headers, **kw))

    def request(self, method, path, body=b'', headers=(), **kw):
        self.send_request(method, path, body, headers, **kw)
        return self.read_response(method)

    def _fill(self, timeout=None):
        """Receive more bytes; False at end of stream (or reset)."""
        if self.eof:
            return False
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b''
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_until(self, sep):
        while sep not in self.buf:
            if not self._fill():
                raise Closed('connection closed; received %r' % self.buf)
        i = self.buf.index(sep) + len(sep)
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def _read_exactly(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise Closed('connection closed after %d of %d body bytes'
                             % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, method='GET', skip_continue=True):
        """Read one response. 1xx responses are skipped unless
        skip_continue is False, when they are returned."""
        while True:
            head = self._read_until(b'\r\n\r\n').decode('latin-1')
            lines = head.split('\r\n')
            version, status, reason = (lines[0].split(' ', 2) + [''])[:3]
            headers = []
            for l in lines[1:]:
                if l:
                    k, _, v = l.partition(':')
                    headers.append((k.strip(), v.strip()))
            status = int(status)
            r = Response(version, status, reason, headers, b'')
            if 100 <= status < 200:
                if skip_continue:
                    continue
                return r
            break
        te = (r.header('Transfer-Encoding') or '').lower()
        if method == 'HEAD' or status in (204, 304):
            pass
        elif te == 'chunked':
            body = b''
            while True:
                size = int(self._read_until(b'\r\n').split(b';')[0], 16)
                if size == 0:
                    self._read_until(b'\r\n')   # no trailers expected
                    break
                body += self._read_exactly(size)
                self._read_exactly(2)
            r.body = body
        elif r.header('Content-Length') is not None:
            r.body = self._read_exactly(int(r.header('Content-Length')))
        else:
            while self._fill():
                pass
            r.body, self.buf = self.buf, b''
        return r

    def readable_within(self, timeout):
        """True when the server sent something (or closed) within
        @timeout seconds."""
        if self.buf or self.eof:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def wait_closed(self, timeout):
        """Wait for the server to close the connection: returns the
        seconds it took, or None when it is still open after @timeout.
        Bytes received meanwhile are kept in self.buf."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if r and not self._fill(0):
                return time.monotonic() - start

    def is_closed_now(self):
        """True when the server has already closed the connection."""
        return self.wait_closed(0.05) is not None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def request(method, path, body=b'', headers=(), port=None, host='127.0.0.1',
            timeout=10, **kw):
    """One request on a new connection; returns the Response."""
    with Connection(port, host, timeout) as c:
        return c.request(method, path, body, headers, **kw)


def post(port, body, secret=None, path=WEBHOOK, content_type=JSON_TYPE,
         signature=None, headers=(), host='127.0.0.1'):
    """POST @body signed with @secret (or with the given @signature)."""
    h = []
    if content_type is not None:
        h.append(('Content-Type', content_type))
    if signature is None and secret is not None:
        signature = sign(secret, body)
    if signature is not None:
        h.append(('ms-signature', signature))
    h += list(headers)
    return request('POST', path, body, h, port=port, host=host)


def get(port, path, headers=(), host='127.0.0.1'):
    return request('GET', path, b'', headers, port=port, host=host)


# ---- sockets as the kernel sees them --------------------------------------

def _proc_addr(addr):
    """(host, port) of a /proc/net/tcp{,6} address field."""
    host_hex, port_hex = addr.split(':')
    raw = binascii.unhexlify(host_hex)
    if len(raw) == 4:
        host = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        words = b''.join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        host = socket.inet_ntop(socket.AF_INET6, words)
    return host, int(port_hex, 16)


def server_unread_bytes(conn):
    """How many bytes the server has not read yet from client @conn's
    connection (its socket's receive queue), or None if not found."""
    local = conn.sock.getsockname()[:2]
    peer = conn.sock.getpeername()[:2]
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if (_proc_addr(cols[1]) == peer and
                    _proc_addr(cols[2]) == local):
                return int(cols[4].split(':')[1], 16)
    return None


def wait_server_read(conn, timeout=5):
    """Bounded polling until the server has read every byte sent on
    @conn (so a test knows its partial request is in the server's hands
    before it acts, e.g. sends a signal)."""
    deadline = time.monotonic() + slow(timeout)
    while True:
        n = server_unread_bytes(conn)
        if n == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError('the server did not read the sent bytes '
                                 'within %.1f s (%r unread)'
                                 % (slow(timeout), n))
        time.sleep(0.005)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(('::1', 0))
        return True
    except OSError:
        return False


def free_port():
    """A port that was free a moment ago (for tests that need a fixed
    port number)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def secret(tag, length=40):
    """A distinct, recognisable secret of @length characters."""
    base = hashlib.sha256(tag.encode()).hexdigest()
    text = (tag + '-' + base * 4)
    return text[:length]


def main():
    unittest.main(verbosity=2)


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
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()


def log_fields(line):
    """key=value fields of a text log line (values may be quoted)."""
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = json.loads(v)
        out[m.group(1)] = v
    return out


def assert_error_body(test, r, secrets=(), body=b''):
    """An error answer: short plain text that holds no secret and no MAC
    (neither the one sent nor the one expected for @body)."""
    test.assertLess(len(r.body), 200, r)
    if r.body:
        test.assertTrue((r.header('Content-Type') or '')
                        .startswith('text/plain'), r)
    text = r.body.decode('utf-8', 'replace')
    low = text.lower()
    for s in secrets:
        test.assertNotIn(s, text)
        test.assertNotIn(mac_hex(s, body).lower(), low)
    for m in SENT_MACS:
        test.assertNotIn(m, low)
    test.assertIsNone(re.search(r'[0-9a-f]{40,}', low),
                      'a long hex string in an error body: %r' % text)
