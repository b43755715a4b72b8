"""Helpers of the tests of `whr send` and `whr probe` (issue 3):

  run_tool      run whr send/probe (under WHR_TEST_WRAPPER too) and check
                that no secret it was given appears in its output;
  Scripted      a tiny HTTP/1.1 server that answers from a script (a
                status, a redirect, silence, a closed connection...) and
                records every raw request with its arrival time;
  NginxTLS      nginx as an HTTPS proxy in front of a port, with a
                throwaway CA and certificates made by the openssl command.

Python's standard library only; every wait is bounded.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402

SECRET = '0123456789abcdef0123456789abcdef-tools'

ACTIONS = ('CourseEnrollment', 'CourseUnenrollment', 'CourseStarted',
           'CourseCompleted', 'CoursePublished', 'CourseUnpublished',
           'EnrollmentApprovalRequest')


# ---- running the tools ----------------------------------------------------

def run_tool(args, env=None, timeout=20):
    """Run `whr ARGS` (args[0] is 'send' or 'probe'); returns (status,
    stdout, stderr). Fails when a secret given to it is in its output:
    run_whr checks for every secret secrets_of() finds, the tools' own
    (--secret, --secret-file, WHR_SECRET) among them."""
    return w.run_whr(list(args), env=env, timeout=timeout)


def closed_port():
    """A port nothing listens on (bound, then closed)."""
    return w.free_port()


# ---- a scripted HTTP server -----------------------------------------------

class Stoppable:
    """A helper that runs until stop(), usable in a with block."""

    def stop(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Request(w.HeaderList):
    """One request as received: its raw head, its body, when it came."""

    def __init__(self, head, body, at):
        self.head = head
        self.body = body
        self.at = at
        lines = head.decode('latin-1').split('\r\n')
        self.method, self.target, self.version = lines[0].split(' ', 2)
        self.headers = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(':')
                self.headers.append((k, v.strip()))

    @property
    def query(self):
        return self.target.partition('?')[2]

    def __repr__(self):
        return '<Request %s %s %r>' % (self.method, self.target,
                                       self.body[:80])


def reply(status=200, body=b'', headers=(), reason=None):
    """An answer for Scripted: a status, a body, extra headers."""
    reasons = {200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content',
               301: 'Moved Permanently', 302: 'Found', 307:
               'Temporary Redirect', 400: 'Bad Request', 404: 'Not Found',
               410: 'Gone', 500: 'Internal Server Error',
               503: 'Service Unavailable'}
    if isinstance(body, str):
        body = body.encode('utf-8')
    return ('reply', status, reason or reasons.get(status, 'Whatever'),
            body, list(headers))


def echo(transform=lambda v: v, content_type='text/plain; charset=utf-8'):
    """An answer with the request's echo= value, transformed."""
    return ('echo', transform, content_type)


HANG = ('hang',)        # read the request, never answer
CLOSE = ('close',)      # read the request, close without answering


class Scripted(Stoppable):
    """A tiny HTTP/1.1 server on 127.0.0.1 answering from a script: the
    n-th request gets script[n], the last entry repeating. Entries:
    reply(...), echo(...), HANG, CLOSE. With continue_100, a request
    carrying Expect: 100-continue gets a 100 Continue first.

        with Scripted([reply(500), reply(200)]) as srv:
            ... srv.url('/hook') ... srv.requests ...
    """

    def __init__(self, script, continue_100=True):
        self.script = list(script)
        self.continue_100 = continue_100
        self.requests = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.active = 0
        self.max_active = 0
        self.stopping = threading.Event()
        self.conns = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def url(self, path=w.WEBHOOK):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _read_request(self, conn):
        buf = b''
        while b'\r\n\r\n' not in buf:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b'\r\n\r\n')
        at = time.monotonic()
        req = Request(head + b'\r\n\r\n', b'', at)
        length = int(req.header('Content-Length') or 0)
        if (req.header('Expect') or '').lower() == '100-continue' and \
                self.continue_100 and len(rest) < length:
            conn.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')
        while len(rest) < length:
            data = conn.recv(65536)
            if not data:
                break
            rest += data
        req.body = rest[:length]
        return req

    def _serve(self, conn):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        active = True
        try:
            conn.settimeout(w.slow(10))
            req = self._read_request(conn)
            if req is None:
                return
            with self.cond:
                n = len(self.requests)
                self.requests.append(req)
                self.cond.notify_all()
            action = self.script[min(n, len(self.script) - 1)]
            if action not in (HANG, CLOSE):
                # Done before the client can have the answer: counted
                # after it, a client that sends its next request at once
                # overlapped this one here (max_active one too many).
                with self.lock:
                    self.active -= 1
                active = False
            self._answer(conn, req, action)
        except OSError:
            pass
        finally:
            if active:
                with self.lock:
                    self.active -= 1
            conn.close()

    def _answer(self, conn, req, action):
        if action == HANG:
            self.stopping.wait(w.slow(30))
            return
        if action == CLOSE:
            return
        if action[0] == 'echo':
            value = re.search(r'(?:^|&)echo=([^&]*)', req.query)
            body = action[1](value.group(1) if value else '')
            action = reply(200, body, [('Content-Type', action[2])])
        _, status, reason, body, headers = action
        head = 'HTTP/1.1 %d %s\r\n' % (status, reason)
        for k, v in headers:
            head += '%s: %s\r\n' % (k, v)
        head += 'Content-Length: %d\r\nConnection: close\r\n\r\n' % len(body)
        conn.sendall(head.encode('latin-1') + body)

    def wait_requests(self, n, timeout=10):
        """Wait until @n requests came; returns them."""
        deadline = time.monotonic() + w.slow(timeout)
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('%d of %d requests came within '
                                         '%.1f s' % (len(self.requests), n,
                                                     w.slow(timeout)))
                self.cond.wait(left)
            return list(self.requests)

    def stop(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        self.acceptor.join(5)


# ---- nginx as a TLS proxy -------------------------------------------------

def _openssl(args, cwd):
    subprocess.run(['openssl'] + args, cwd=cwd, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30)


def make_certificates(directory):
    """A throwaway CA (ca.pem) and two server certificates it signed:
    good.pem for localhost and 127.0.0.1, other.pem for other.example."""
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    _openssl(['req', '-x509', *ec, '-keyout', 'ca.key', '-out', 'ca.pem',
              '-days', '2', '-subj', '/CN=whr test CA',
              '-addext', 'basicConstraints=critical,CA:TRUE',
              '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], directory)
    for name, san in (('good', 'DNS:localhost,IP:127.0.0.1'),
                      ('other', 'DNS:other.example')):
        ext = os.path.join(directory, name + '.ext')
        with open(ext, 'w') as f:
            f.write('subjectAltName=%s\nbasicConstraints=CA:FALSE\n'
                    'extendedKeyUsage=serverAuth\n' % san)
        _openssl(['req', '-new', *ec, '-keyout', name + '.key', '-out',
                  name + '.csr', '-subj', '/CN=' + san.split(',')[0][4:]],
                 directory)
        _openssl(['x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem',
                  '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
                  '-out', name + '.pem', '-extfile', ext], directory)


class NginxProcess(Stoppable):
    """nginx run from a throwaway folder (`dir`) that holds the test CA's
    certificates (`cacert`, good.pem, other.pem): what NginxTLS and
    test_nginx's Nginx share. A subclass writes its servers, then calls
    start()."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-nginx-')
        self.dir = self.tmp.name
        self.proc = None
        self.error_log = os.path.join(self.dir, 'error.log')
        make_certificates(self.dir)
        self.cacert = os.path.join(self.dir, 'ca.pem')

    def start(self, http, log_level, ports, program=None, connections=64):
        """Run nginx (@program, or the one on PATH) with @http inside its
        http block, logging at @log_level, @connections per worker, until
        it listens on each of @ports; stopped again when it does not."""
        d = self.dir
        temp = ''.join('    %s_temp_path %s/%s;\n' % (k, d, k) for k in
                       ('client_body', 'proxy', 'fastcgi', 'uwsgi',
                        'scgi'))
        conf = os.path.join(d, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write('''worker_processes 1;
pid %s/nginx.pid;
error_log %s %s;
events { worker_connections %d; }
http {
%s%s
}
''' % (d, self.error_log, log_level, connections, temp, http))
        self.proc = subprocess.Popen(
            [program or shutil.which('nginx') or '/usr/sbin/nginx',
             '-p', d, '-c', conf, '-e', self.error_log,
             '-g', 'daemon off;'], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_ready(ports)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, ports):
        deadline = time.monotonic() + 10
        for port in ports:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError('nginx exited (%d): %s'
                                         % (self.proc.returncode,
                                            self.proc.stderr.read()
                                            .decode('utf-8', 'replace')))
                try:
                    socket.create_connection(('127.0.0.1', port), 0.2) \
                        .close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError('nginx did not listen on %d '
                                             'within 10 s' % port)
                    time.sleep(0.02)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.tmp.cleanup()


class NginxTLS(NginxProcess):
    """nginx terminating TLS in front of 127.0.0.1:@upstream_port, on two
    ports: `port` with a certificate for localhost and 127.0.0.1, and
    `other_port` with one for other.example; both signed by `cacert`.
    Stop it with stop() (or use it as a context manager)."""

    def __init__(self, upstream_port):
        super().__init__()
        d = self.dir
        self.port = w.free_port()
        self.other_port = w.free_port()
        servers = ''
        for port, name in ((self.port, 'good'), (self.other_port, 'other')):
            servers += '''
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s/%s.pem;
        ssl_certificate_key %s/%s.key;
        location / {
            proxy_pass http://127.0.0.1:%d;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }''' % (port, d, name, d, name, upstream_port)
        self.start('''    access_log off;
    client_body_buffer_size 1m;
    proxy_max_temp_file_size 0;
%s''' % servers, 'warn', (self.port, self.other_port))

    def url(self, path=w.WEBHOOK, host='localhost', other=False):
        return 'https://%s:%d%s' % (host, self.other_port if other else
                                    self.port, path)
