"""HTTP over raw sockets: exact requests, exact answers."""

import select
import socket
import time

from .environment import JSON_TYPE, WEBHOOK, slow
from .bodies import secret, sign
from .secrecy import _note_signature


# <linux/in.h>; not in Python's socket module before 3.12.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, 'IP_BIND_ADDRESS_NO_PORT', 24)


class HeaderList:
    """Lookups in `headers`, a list of (name, value) as received, for a
    response here and a request a test's own server received."""

    def header(self, name):
        """The first value of header @name (any case), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Response(HeaderList):
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] as received
        self.body = body

    def __iter__(self):
        """status, headers, body = request(...)"""
        return iter((self.status, self.headers, self.body))

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
                 mss=None, source=None):
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
            # From a chosen local address (127.0.0.2, say: another
            # client as whr sees it); the port is picked at connect().
            if source is not None:
                self.sock.setsockopt(socket.IPPROTO_IP,
                                     IP_BIND_ADDRESS_NO_PORT, 1)
                self.sock.bind((source, 0))
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
