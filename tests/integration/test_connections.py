"""The connections of a whr that faces the internet (issue 13): answers
from a request's head before its body is read, the body memory budget,
connections per client, trusted proxies and the client they name,
header-timeout and write-timeout, a full table making room, and the
descriptor limit. test_hostile.py has the attacks; these are the rules,
one at a time."""

import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
OTHER = '127.0.0.2'


def head_of(path=WEBHOOK, length=1000000, signature=w.V1_SIGNATURE,
            extra=()):
    """A POST's head announcing @length bytes of body."""
    headers = [('Content-Type', w.JSON_TYPE),
               ('Content-Length', str(length))] + list(extra)
    if signature is not None:
        headers.append(('ms-signature', signature))
    return w.build_request('POST', path, b'', headers)


class FromTheHead(w.ServerTestCase):
    """What the headers decide is answered before the body is read, and
    the connection closed."""
    server_env = ENV

    def answered_unread(self, raw, status, words):
        with w.Connection(self.srv.port) as c:
            start = time.monotonic()
            c.send(raw + b'{"Id": ')
            r = c.read_response('POST')
            self.assertEqual(r.status, status, r)
            self.assertLess(time.monotonic() - start, w.timing_bound(2))
            self.assertIn(words, r.body.decode())
            self.assertEqual((r.header('Connection') or '').lower(),
                             'close', r)
            w.assert_error_body(self, r, [V1_SECRET])
            self.assertIsNotNone(c.wait_closed(w.slow(5)),
                                 'the connection stayed open')

    def test_an_id_without_a_secret(self):
        self.answered_unread(head_of(WEBHOOK + '/nobody'), 404,
                             'no secret')

    def test_no_signature(self):
        self.answered_unread(head_of(signature=None), 400, 'missing')

    def test_two_signatures(self):
        self.answered_unread(head_of(extra=[('ms-signature',
                                             w.V1_SIGNATURE)]),
                             400, 'more than one')

    def test_a_signature_that_cannot_be_a_mac(self):
        self.answered_unread(head_of(signature='sha256=ABCD'), 400,
                             'does not match')

    def test_before_100_continue(self):
        with w.Connection(self.srv.port) as c:
            c.send(head_of(signature=None,
                           extra=[('Expect', '100-continue')]))
            r = c.read_response('POST', skip_continue=False)
            self.assertEqual(r.status, 400, r)

    def test_the_log_line_of_an_answer_from_the_head(self):
        mark = self.srv.mark()
        with w.Connection(self.srv.port) as c:
            c.send(head_of(WEBHOOK + '/Nobody', signature=None))
            self.assertEqual(c.read_response('POST').status, 404)
        # A line from an earlier test's connection may come after the
        # mark (a refused connection is logged as it closes, and under
        # valgrind that can be late): this request's line is the one for
        # its path.
        line = self.srv.request_line(
            mark, pattern=r'request method=\S+ path=%s ' % re.escape(
                WEBHOOK + '/Nobody'))
        f = w.log_fields(line)
        self.assertEqual(f['method'], 'POST', line)
        self.assertEqual(f['path'], WEBHOOK + '/Nobody', line)
        self.assertEqual(f['receiver'], 'Nobody', line)
        self.assertEqual(f['status'], '404', line)
        self.assertRegex(f['remote'], r'^127\.0\.0\.1:\d+$', line)

    def test_a_good_delivery_is_still_read(self):
        r = w.post(self.srv.port, w.delivery(), V1_SECRET)
        self.assertEqual(r.status, 200, r)

    def test_other_routes_with_a_body(self):
        """A body on a route that takes none is not read either: its
        404 or 405 comes from the head."""
        def with_body(method, path):
            return w.build_request(method, path, b'', [
                ('Content-Type', w.JSON_TYPE), ('Content-Length', '900000')])

        self.answered_unread(with_body('POST', '/nothing-here'), 404,
                             'not found')
        for method, path, allow in (('POST', '/healthz', 'GET, HEAD'),
                                    ('PUT', '/readyz', 'GET, HEAD'),
                                    ('POST', '/metrics', 'GET'),
                                    ('PUT', WEBHOOK, 'GET, POST')):
            with self.subTest(method=method, path=path):
                self.answered_unread(with_body(method, path), 405, 'use GET')
                with w.Connection(self.srv.port) as c:
                    c.send(with_body(method, path))
                    self.assertEqual(c.read_response(method).header('Allow'),
                                     allow)

    def test_a_target_in_absolute_form(self):
        """whr is not a proxy: evhttp would route "http://host/path" by a
        path read otherwise than the head's."""
        self.answered_unread(head_of('http://x' + WEBHOOK, signature=None),
                             400, 'not a proxy')


class BodyMemory(unittest.TestCase):
    def test_a_large_body_waits_then_gets_503_a_small_one_passes(self):
        # Room for one large body: a second one waits unread, then is
        # refused with Retry-After; a small delivery still fits.
        # The holder's read-timeout comes after the 5 s a body waits.
        args = ['--max-body-memory', '1MiB', '--max-body', '400KiB',
                '--read-timeout', '7s']
        with w.Server(args, env=ENV) as srv:
            mark = srv.mark()
            holder = w.Connection(srv.port)
            try:
                holder.send(head_of(length=400 * 1024) + b'x' * 1000)
                time.sleep(0.2)
                with w.Connection(srv.port, source=OTHER) as c:
                    c.send(head_of(length=400 * 1024) + b'y' * 1000)
                    r = c.read_response('POST')
                    self.assertEqual(r.status, 503, r)
                    self.assertEqual(r.header('Retry-After'), '30', r)
                    self.assertIn('max-body-memory', r.body.decode())
                srv.wait_log(r'max-body-memory \(1048576 bytes\) is taken',
                             since=mark)
                r = w.post(srv.port, w.delivery(), V1_SECRET)
                self.assertEqual(r.status, 200, r)
            finally:
                holder.close()


class PerClient(unittest.TestCase):
    def test_connections_beyond_the_limit_are_closed(self):
        with w.Server(['--max-connections-per-client', '2'],
                      env=ENV) as srv:
            mark = srv.mark()
            a = w.Connection(srv.port)
            b = w.Connection(srv.port)
            c = w.Connection(srv.port)
            other = w.Connection(srv.port, source=OTHER)
            try:
                self.assertIsNotNone(c.wait_closed(w.slow(5)),
                                     'a third connection was kept')
                for conn in (a, b, other):
                    r = conn.request('GET', '/healthz')
                    self.assertEqual(r.status, 200, r)
                srv.wait_log(r'connection from 127\.0\.0\.1:\d+ refused: '
                             r'max-connections-per-client \(2\)', since=mark)
            finally:
                for conn in (a, b, c, other):
                    conn.close()
            # Closed ones give their place back.
            r = w.request('GET', '/healthz', port=srv.port)
            self.assertEqual(r.status, 200, r)

    def test_a_trusted_proxy_has_no_limit(self):
        with w.Server(['--max-connections-per-client', '1',
                       '--trusted-proxy', '127.0.0.1'], env=ENV) as srv:
            conns = [w.Connection(srv.port) for _ in range(3)]
            try:
                for conn in conns:
                    r = conn.request('GET', '/healthz')
                    self.assertEqual(r.status, 200, r)
            finally:
                for conn in conns:
                    conn.close()


class TrustedProxy(unittest.TestCase):
    def test_the_log_names_the_client_behind_a_trusted_proxy(self):
        forwarded = [('X-Forwarded-For', '198.51.100.9, 203.0.113.7')]
        with w.Server(['--trusted-proxy', '127.0.0.1/32'], env=ENV) as srv:
            mark = srv.mark()
            r = w.post(srv.port, w.delivery(), V1_SECRET, headers=forwarded)
            self.assertEqual(r.status, 200, r)
            f = w.log_fields(srv.request_line(mark))
            self.assertEqual(f['client'], '203.0.113.7')
            self.assertRegex(f['remote'], r'^127\.0\.0\.1:\d+$')
            # A peer that is not trusted is its own client.
            mark = srv.mark()
            with w.Connection(srv.port, source=OTHER) as c:
                r = c.request('GET', '/healthz', headers=forwarded)
                self.assertEqual(r.status, 200, r)
            f = w.log_fields(srv.request_line(mark))
            self.assertNotIn('client', f)
            self.assertRegex(f['remote'], r'^127\.0\.0\.2:\d+$')

    def test_without_trusted_proxies_the_header_is_not_believed(self):
        with w.Server(env=ENV) as srv:
            mark = srv.mark()
            r = w.get(srv.port, '/healthz',
                      headers=[('X-Forwarded-For', '203.0.113.7')])
            self.assertEqual(r.status, 200, r)
            self.assertNotIn('client', w.log_fields(srv.request_line(mark)))


class Deadlines(unittest.TestCase):
    def test_header_timeout_is_shorter_than_read_timeout(self):
        with w.Server(['--header-timeout', '400ms', '--read-timeout', '5s'],
                      env=ENV) as srv:
            mark = srv.mark()
            with w.Connection(srv.port) as c:
                start = time.monotonic()
                c.send(b'POST ' + WEBHOOK.encode() + b' HTTP/1.1\r\nHost: x\r\n')
                took = c.wait_closed(w.slow(10))
                self.assertIsNotNone(took, 'never closed')
                self.assertGreater(time.monotonic() - start, 0.3)
                self.assertLess(took, w.timing_bound(3))
            srv.wait_log(r'header-timeout', since=mark)
            # A body has the rest of read-timeout.
            body = w.delivery()
            with w.Connection(srv.port) as c:
                c.send(w.build_request('POST', WEBHOOK, b'', [
                    ('Content-Type', w.JSON_TYPE),
                    ('ms-signature', w.sign(V1_SECRET, body)),
                    ('Content-Length', str(len(body)))]))
                time.sleep(0.8)
                c.send(body)
                self.assertEqual(c.read_response('POST').status, 200)

    def test_an_answer_not_taken_closes_the_connection(self):
        # Large echo answers, pipelined, to a client that reads none of
        # them: once the kernel's buffers are full (a few MiB), one stays
        # in whr, and write-timeout ends it.
        value = 'v' * 900000
        request = w.build_request('GET', WEBHOOK + '?echo=' + value)
        with w.Server(['--write-timeout', '500ms',
                       '--max-header-size', '1MiB'], env=ENV) as srv:
            mark = srv.mark()
            with w.Connection(srv.port, rcvbuf=4096, mss=1000) as c:
                c.sock.settimeout(w.slow(10))
                start = time.monotonic()
                try:
                    for _ in range(12):
                        c.sock.sendall(request)
                except OSError:
                    pass        # whr stopped reading, then closed
                srv.wait_log(r'write-timeout', since=mark, timeout=20)
                self.assertLess(time.monotonic() - start,
                                w.timing_bound(10))


class FullTable(unittest.TestCase):
    def test_an_idle_connection_makes_room(self):
        with w.with_both_connections_taken(ENV) as (srv, a, b):
            self.assertEqual(a.request('GET', '/healthz').status, 200)
            srv.wait_log(r'max-connections \(2\) reached')
            start = time.monotonic()
            with w.Connection(srv.port, source=OTHER) as c:
                r = c.request('GET', '/healthz')
                self.assertEqual(r.status, 200, r)
            self.assertLess(time.monotonic() - start, w.timing_bound(3))
            # b, idle longest, went.
            self.assertIsNotNone(b.wait_closed(w.slow(5)))


class Descriptors(unittest.TestCase):
    def test_max_connections_is_lowered_to_what_fits(self):
        # Through sh: a wrapper (valgrind) wraps the shell alone, which
        # execs prlimit and whr as they are, so that the limit is the
        # kernel's and the descriptors whr's own.
        program = ['sh', '-c', 'exec prlimit --nofile=200:200 -- "$0" serve '
                   '"$@"', w.whr_bin()]
        with w.Server(env=ENV, program=program) as srv:
            m = srv.wait_log(r'max-connections lowered from 1000 to (\d+)')
            self.assertLess(int(m.group(1)), 200)
            self.assertGreater(int(m.group(1)), 50)
            self.assertEqual(w.get(srv.port, '/healthz').status, 200)


class NotHttp(w.ServerTestCase):
    server_env = ENV

    def test_tls_on_the_plain_port_is_refused_at_once(self):
        with w.Connection(self.srv.port) as c:
            c.send(b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03')
            r = c.read_response()
            self.assertEqual(r.status, 400, r)


if __name__ == '__main__':
    w.main()
