"""Routes, methods, size limits, timeouts, framing and connection limits."""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

S_TENANT = w.secret('routes-tenant2')
ENV = {'MS_WebHookReceiverSecret_Custom':
       '%s, Tenant2=%s' % (V1_SECRET, S_TENANT)}


def padded_delivery(size, secret=V1_SECRET):
    """A valid delivery of exactly @size bytes, and its signature."""
    base = w.delivery(notifications=[{'Action': 'a1', 'Pad': ''}])
    pad = size - len(base)
    assert pad >= 0, size
    body = base.replace(b'"Pad": ""', b'"Pad": "' + b'p' * pad + b'"')
    assert len(body) == size
    return body, w.sign(secret, body)


class Routes(w.ServerTestCase):
    server_env = ENV

    def test_receiver_name_and_id_in_any_case(self):
        body = w.vector('v1')
        for path in ['/api/webhooks/incoming/custom',
                     '/API/WebHooks/Incoming/CUSTOM',
                     '/api/webhooks/incoming/Custom/']:
            with self.subTest(path=path):
                self.assertEqual(w.post(self.srv.port, body, V1_SECRET,
                                        path=path).status, 200)
        for path in [WEBHOOK + '/tenant2', WEBHOOK + '/TENANT2',
                     '/Api/Webhooks/Incoming/Custom/tEnAnT2/']:
            with self.subTest(path=path):
                self.assertEqual(w.post(self.srv.port, body, S_TENANT,
                                        path=path).status, 200)
                # ... and only with that id's secret.
                self.assertEqual(w.post(self.srv.port, body, V1_SECRET,
                                        path=path).status, 400)

    def test_percent_encoded_id(self):
        r = w.post(self.srv.port, w.vector('v1'), S_TENANT,
                   path=WEBHOOK + '/%74enant%32')
        self.assertEqual(r.status, 200, r)
        r = w.post(self.srv.port, w.vector('v1'), S_TENANT,
                   path=WEBHOOK + '/tenant%2F2')
        self.assertEqual(r.status, 404, r)

    def test_id_with_a_nul_byte_is_not_another_id(self):
        # "tenant2%00x" decodes to 7 + 2 bytes; it is not "tenant2".
        for path in [WEBHOOK + '/tenant2%00x', WEBHOOK + '/tenant2%00',
                     WEBHOOK + '/%00']:
            with self.subTest(path=path):
                r = w.get(self.srv.port, path + '?echo=nul')
                self.assertEqual(r.status, 404, r)
                r = w.post(self.srv.port, w.vector('v1'), S_TENANT,
                           path=path)
                self.assertEqual(r.status, 404, r)

    def test_very_long_id_is_404(self):
        r = w.post(self.srv.port, w.vector('v1'), V1_SECRET,
                   path=WEBHOOK + '/' + 'x' * 5000)
        self.assertEqual(r.status, 404, r)
        w.assert_error_body(self, r, [V1_SECRET, S_TENANT])

    def test_query_string_of_a_post_is_ignored(self):
        # The sender posts to the registered URI verbatim, query included.
        r = w.post(self.srv.port, w.vector('v1'), V1_SECRET,
                   path=WEBHOOK + '?noecho&x=1')
        self.assertEqual(r.status, 200, r)

    def test_unknown_paths_are_404(self):
        for path in [WEBHOOK + '/a/b', WEBHOOK + '/tenant2/x',
                     '/api/webhooks/incoming/customer', '/',
                     '/api/webhooks/incoming', '/api/webhooks/incoming/',
                     WEBHOOK + '//', '/healthz/', '/favicon.ico',
                     '/x' + WEBHOOK]:
            for method in ['GET', 'POST']:
                with self.subTest(path=path, method=method):
                    r = w.request(method, path, b'{}',
                                  [('Content-Type', 'application/json'),
                                   ('ms-signature', w.sign(V1_SECRET,
                                                           b'{}'))],
                                  port=self.srv.port)
                    self.assertEqual(r.status, 404, r)
                    w.assert_error_body(self, r, [V1_SECRET, S_TENANT],
                                        b'{}')

    def test_health(self):
        r = w.get(self.srv.port, '/healthz')
        self.assertEqual(r.status, 200, r)
        r = w.request('HEAD', '/healthz', port=self.srv.port)
        self.assertEqual(r.status, 200, r)
        r = w.request('POST', '/healthz', b'{}', port=self.srv.port)
        self.assertEqual(r.status, 405, r)
        allow = [m.strip() for m in (r.header('Allow') or '').split(',')]
        self.assertIn('GET', allow, r)
        self.assertNotIn('POST', allow, r)

    def test_other_methods_on_the_webhook_path_are_405(self):
        for method in ['PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD']:
            for path in [WEBHOOK, WEBHOOK + '/tenant2']:
                with self.subTest(method=method, path=path):
                    r = w.request(method, path, b'', port=self.srv.port)
                    self.assertEqual(r.status, 405, r)
                    self.assertEqual(r.header('Allow'), 'GET, POST', r)


class BodyLimit(w.ServerTestCase):
    server_env = ENV
    server_args = ('--max-body', '2048')

    def test_exactly_the_limit_is_accepted(self):
        body, sig = padded_delivery(2048)
        r = w.post(self.srv.port, body, signature=sig)
        self.assertEqual(r.status, 200, r)

    def test_one_byte_over_is_413(self):
        body, sig = padded_delivery(2049)
        r = w.post(self.srv.port, body, signature=sig)
        self.assertEqual(r.status, 413, r)

    def test_413_comes_before_the_body_is_read(self):
        # Announce 10 MB and send a few bytes: the answer must come
        # without the rest.
        with w.Connection(self.srv.port) as c:
            c.send(w.build_request('POST', WEBHOOK, b'', [
                ('Content-Type', w.JSON_TYPE),
                ('ms-signature', w.V1_SIGNATURE),
                ('Content-Length', '10000000')]) + b'{"Id": ')
            r = c.read_response('POST')
            self.assertEqual(r.status, 413, r)
            self.assertIsNotNone(c.wait_closed(w.slow(5)),
                                 'the connection should be closed')

    def test_413_instead_of_100_continue(self):
        with w.Connection(self.srv.port) as c:
            c.send(w.build_request('POST', WEBHOOK, b'', [
                ('Content-Type', w.JSON_TYPE),
                ('ms-signature', w.V1_SIGNATURE),
                ('Expect', '100-continue'),
                ('Content-Length', '2049')]))
            r = c.read_response('POST', skip_continue=False)
            self.assertEqual(r.status, 413, r)

    def test_chunked_body_over_the_limit_is_refused(self):
        body, sig = padded_delivery(4000)
        with w.Connection(self.srv.port) as c:
            c.send(w.build_request('POST', WEBHOOK, b'', [
                ('Content-Type', w.JSON_TYPE), ('ms-signature', sig),
                ('Transfer-Encoding', 'chunked')]))
            try:
                for i in range(0, len(body), 1000):
                    piece = body[i:i + 1000]
                    c.send(b'%x\r\n%s\r\n' % (len(piece), piece))
                c.send(b'0\r\n\r\n')
                r = c.read_response('POST')
            except (w.Closed, ConnectionError):
                return   # closed without an answer: refused too
            self.assertEqual(r.status, 413, r)


class DefaultBodyLimit(w.ServerTestCase):
    server_env = ENV

    def test_default_limit_is_1_MiB(self):
        body, sig = padded_delivery(1024 * 1024)
        self.assertEqual(w.post(self.srv.port, body, signature=sig).status,
                         200)
        with w.Connection(self.srv.port) as c:
            c.send(w.build_request('POST', WEBHOOK, b'', [
                ('Content-Type', w.JSON_TYPE),
                ('ms-signature', w.V1_SIGNATURE),
                ('Content-Length', str(1024 * 1024 + 1))]) + b'{')
            self.assertEqual(c.read_response('POST').status, 413)


class HeaderLimit(w.ServerTestCase):
    server_env = ENV
    server_args = ('--max-header-size', '2KiB')

    def test_small_headers_pass(self):
        r = w.post(self.srv.port, w.vector('v1'), V1_SECRET,
                   headers=[('X-Pad', 'p' * 1000)])
        self.assertEqual(r.status, 200, r)

    def test_4_KiB_of_headers_is_refused(self):
        headers = [('X-Pad-%d' % i, 'p' * 500) for i in range(8)]
        with w.Connection(self.srv.port) as c:
            try:
                c.send(w.build_request('POST', WEBHOOK, w.vector('v1'), [
                    ('Content-Type', w.JSON_TYPE),
                    ('ms-signature', w.V1_SIGNATURE)] + headers))
                r = c.read_response('POST')
            except (w.Closed, ConnectionError):
                return
            self.assertTrue(400 <= r.status < 500, r)


class ReadTimeout(unittest.TestCase):
    def test_half_a_request_is_cut_at_the_read_timeout(self):
        with w.Server(['--read-timeout', '500ms'], env=ENV) as srv:
            with w.Connection(srv.port) as c:
                mark = srv.mark()
                start = time.monotonic()
                c.send(b'POST ' + WEBHOOK.encode() + b' HTTP/1.1\r\n'
                       b'Host: x\r\nContent-Length: 100\r\n')
                took = c.wait_closed(w.slow(10))
                self.assertIsNotNone(took, 'never closed')
                took = time.monotonic() - start
                self.assertGreater(took, 0.3)
                self.assertLess(took, w.timing_bound(3))
            srv.wait_log(r'read-timeout', since=mark)

    def test_half_a_body_is_cut_at_the_read_timeout(self):
        with w.Server(['--read-timeout', '500ms'], env=ENV) as srv:
            with w.Connection(srv.port) as c:
                start = time.monotonic()
                c.send(w.build_request('POST', WEBHOOK, b'', [
                    ('Content-Type', w.JSON_TYPE),
                    ('ms-signature', w.V1_SIGNATURE),
                    ('Content-Length', '1078')]) + w.vector('v1')[:500])
                self.assertIsNotNone(c.wait_closed(w.slow(10)), 'never closed')
                took = time.monotonic() - start
                self.assertGreater(took, 0.3)
                self.assertLess(took, w.timing_bound(3))
                self.assertEqual(c.buf, b'', 'no answer expected')

    def test_dripping_does_not_extend_the_deadline(self):
        with w.Server(['--read-timeout', '500ms'], env=ENV) as srv:
            request = w.build_request('POST', WEBHOOK, w.vector('v1'), [
                ('Content-Type', w.JSON_TYPE),
                ('ms-signature', w.V1_SIGNATURE)])
            with w.Connection(srv.port) as c:
                start = time.monotonic()
                closed_after = None
                for i in range(len(request)):
                    try:
                        c.send(request[i:i + 1])
                    except (BrokenPipeError, ConnectionResetError):
                        closed_after = time.monotonic() - start
                        break
                    if c.wait_closed(0.2) is not None:
                        closed_after = time.monotonic() - start
                        break
                    if time.monotonic() - start > w.timing_bound(6):
                        break
                self.assertIsNotNone(closed_after,
                                     'a byte every 200 ms kept the '
                                     'connection open')
                self.assertGreater(closed_after, 0.3)
                self.assertLess(closed_after, w.timing_bound(3))

    def test_a_whole_request_well_within_the_timeout_is_served(self):
        with w.Server(['--read-timeout', '500ms'], env=ENV) as srv:
            with w.Connection(srv.port) as c:
                # Several requests one after another on one connection:
                # the deadline is per request, not per connection.
                deadline = time.monotonic() + 1.2
                n = 0
                while time.monotonic() < deadline:
                    r = c.request('GET', WEBHOOK + '?echo=%d' % n)
                    self.assertEqual(r.body, str(n).encode())
                    n += 1
                    if c.wait_closed(0.1) is not None:
                        self.fail('closed between requests')


    def test_deadline_restarts_with_each_request(self):
        with w.Server(['--read-timeout', '500ms'], env=ENV) as srv:
            with w.Connection(srv.port) as c:
                # Two whole requests and the start of a third in one
                # write: the first two are answered, the third is cut.
                c.send(w.build_request('GET', WEBHOOK + '?echo=1') +
                       w.build_request('POST', WEBHOOK, w.vector('v1'), [
                           ('Content-Type', w.JSON_TYPE),
                           ('ms-signature', w.V1_SIGNATURE)]) +
                       b'GET ' + WEBHOOK.encode())
                start = time.monotonic()
                self.assertEqual(c.read_response().body, b'1')
                self.assertEqual(c.read_response('POST').status, 200)
                self.assertIsNotNone(c.wait_closed(w.slow(10)),
                                     'never closed')
                took = time.monotonic() - start
                self.assertGreater(took, 0.3)
                self.assertLess(took, w.timing_bound(3))


class IdleTimeout(unittest.TestCase):
    def test_idle_keep_alive_connection_is_closed(self):
        with w.Server(['--idle-timeout', '500ms'], env=ENV) as srv:
            with w.Connection(srv.port) as c:
                r = c.request('GET', WEBHOOK + '?echo=1')
                self.assertEqual(r.status, 200)
                took = c.wait_closed(w.slow(10))
                self.assertIsNotNone(took, 'never closed')
                self.assertGreater(took, 0.3)
                self.assertLess(took, w.timing_bound(3))

    def test_silent_new_connection_is_closed(self):
        with w.Server(['--idle-timeout', '500ms'], env=ENV) as srv:
            with w.Connection(srv.port) as c:
                took = c.wait_closed(w.slow(10))
                self.assertIsNotNone(took, 'never closed')
                self.assertGreater(took, 0.3)
                self.assertLess(took, w.timing_bound(3))

    def test_keep_alive_serves_several_requests(self):
        with w.Server(env=ENV) as srv:
            with w.Connection(srv.port) as c:
                local = c.sock.getsockname()
                for i in range(3):
                    r = c.request('POST', WEBHOOK, w.vector('v1'), [
                        ('Content-Type', w.JSON_TYPE),
                        ('ms-signature', w.V1_SIGNATURE)])
                    self.assertEqual(r.status, 200, r)
                    self.assertNotEqual((r.header('Connection') or '')
                                        .lower(), 'close')
                self.assertEqual(c.sock.getsockname(), local)
                self.assertFalse(c.is_closed_now())
                r = c.request('GET', WEBHOOK + '?echo=last')
                self.assertEqual(r.body, b'last')

    def test_pipelined_requests_are_answered_in_order(self):
        with w.Server(env=ENV) as srv:
            with w.Connection(srv.port) as c:
                c.send(w.build_request('GET', WEBHOOK + '?echo=1') +
                       w.build_request('POST', WEBHOOK, w.vector('v1'), [
                           ('Content-Type', w.JSON_TYPE),
                           ('ms-signature', w.V1_SIGNATURE)]) +
                       w.build_request('POST', WEBHOOK, w.vector('v1'), [
                           ('Content-Type', w.JSON_TYPE),
                           ('ms-signature', w.V2_SIGNATURE)]) +
                       w.build_request('GET', WEBHOOK + '?echo=4'))
                self.assertEqual(c.read_response().body, b'1')
                self.assertEqual(c.read_response('POST').status, 200)
                self.assertEqual(c.read_response('POST').status, 400)
                self.assertEqual(c.read_response().body, b'4')

    def test_http_1_0_request_is_answered_and_closed(self):
        with w.Server(env=ENV) as srv:
            with w.Connection(srv.port) as c:
                r = c.request('GET', WEBHOOK + '?echo=old',
                              version='HTTP/1.0')
                self.assertEqual((r.status, r.body), (200, b'old'))
                self.assertIsNotNone(c.wait_closed(w.slow(5)))


class Framing(unittest.TestCase):
    def test_two_content_lengths_are_refused_and_the_rest_dropped(self):
        # A proxy that reads the second length would forward one request
        # where evhttp (reading the first) sees two: the smuggled one must
        # never be answered, whichever length the two headers give.
        smuggled = w.build_request('GET', WEBHOOK + '?echo=SMUGGLED')
        body = w.vector('v1')
        for first, second in [(len(body), len(body) + len(smuggled)),
                              (len(body), len(body))]:
            with self.subTest(first=first, second=second), \
                    w.Server(env=ENV) as srv, \
                    w.Connection(srv.port) as c:
                c.send(w.build_request('POST', WEBHOOK, body, [
                    ('Content-Type', w.JSON_TYPE),
                    ('ms-signature', w.V1_SIGNATURE),
                    ('Content-Length', str(first)),
                    ('content-length', str(second))]) + smuggled)
                r = c.read_response('POST')
                self.assertEqual(r.status, 400, r)
                self.assertIn(b'more than one Content-Length', r.body)
                self.assertEqual((r.header('Connection') or '').lower(),
                                 'close')
                self.assertIsNotNone(c.wait_closed(w.slow(5)))
                self.assertNotIn(b'SMUGGLED', c.buf)


    def test_a_body_on_head_or_trace_is_refused(self):
        # evhttp reads no body for HEAD and TRACE: the bytes a
        # Content-Length (or chunks) announce would be read as the next
        # request, where a proxy would see a body.
        smuggled = w.build_request('GET', WEBHOOK + '?echo=SMUGGLED')
        cases = [('HEAD', [('Content-Length', str(len(smuggled)))],
                  smuggled),
                 ('TRACE', [('Content-Length', str(len(smuggled)))],
                  smuggled),
                 ('HEAD', [('Transfer-Encoding', 'chunked')],
                  b'%x\r\n%s\r\n0\r\n\r\n' % (len(smuggled), smuggled))]
        with w.Server(env=ENV) as srv:
            for method, headers, body in cases:
                with self.subTest(method=method, headers=headers), \
                        w.Connection(srv.port) as c:
                    c.send(w.build_request(method, '/healthz', body,
                                           headers) + smuggled)
                    r = c.read_response(method)
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual((r.header('Connection') or '')
                                     .lower(), 'close')
                    self.assertIsNotNone(c.wait_closed(w.slow(5)))
                    self.assertNotIn(b'SMUGGLED', c.buf)
            # Content-Length: 0 says there is none: that is fine.
            with w.Connection(srv.port) as c:
                r = c.request('HEAD', '/healthz', headers=[
                    ('Content-Length', '0')])
                self.assertEqual(r.status, 200, r)

    def test_head_answers_have_no_body(self):
        # On a kept-alive connection, a body after a HEAD answer would be
        # read as the start of the next answer.
        with w.Server(env=ENV) as srv, w.Connection(srv.port) as c:
            for path, status, length in [('/healthz', 200, 3),
                                         ('/readyz', 200, 6),
                                         (WEBHOOK, 405, None)]:
                with self.subTest(path=path):
                    r = c.request('HEAD', path)
                    self.assertEqual(r.status, status, r)
                    if length is not None:
                        self.assertEqual(r.header('Content-Length'),
                                         str(length))
                    r = c.request('GET', WEBHOOK + '?echo=next')
                    self.assertEqual((r.status, r.body), (200, b'next'))


class MaxConnections(unittest.TestCase):
    def test_third_connection_waits_for_a_free_slot(self):
        with w.with_both_connections_taken(ENV) as (srv, a, b):
            srv.wait_log(r'max-connections \(2\) reached')
            c = w.Connection(srv.port)
            c.send(w.build_request('GET', WEBHOOK + '?echo=third'))
            self.assertFalse(c.readable_within(0.5),
                             'served beyond max-connections')
            # The two first ones still work.
            self.assertEqual(a.request('GET', WEBHOOK + '?echo=a').body,
                             b'a')
            self.assertEqual(
                srv.log().count('max-connections (2) reached'), 1,
                'one warning while at the limit')
            a.close()
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b'third'))
            c.close()


    def test_every_way_a_connection_ends_frees_its_slot(self):
        # With room for one connection, each way a connection can end
        # must give its place back, or the next client waits forever.
        args = ['--max-connections', '1', '--read-timeout', '300ms',
                '--idle-timeout', '300ms', '--max-body', '2048']
        big = w.build_request('POST', WEBHOOK, b'', [
            ('Content-Length', '5000')])
        scenarios = [
            ('client closes at once', b'', False, False),
            ('idle timeout', b'', False, True),
            ('client closes mid-request', b'GET / HTTP/1.1\r\n', False,
             False),
            ('read timeout', b'GET / HTTP/1.1\r\n', False, True),
            ('413', big, False, True),
            ('malformed request line', b'GARBAGE\r\n\r\n', False, True),
            ('unknown HTTP version', b'GET / HTTP/9.9\r\n\r\n', False,
             True),
            ('headers too large', b'GET / HTTP/1.1\r\nX: ' + b'a' * 20000 +
             b'\r\n\r\n', False, True),
            ('reset while idle', b'', True, False),
            ('reset mid-request', b'GET / HTT', True, False),
            ('Connection: close', b'GET /healthz HTTP/1.1\r\n'
             b'Connection: close\r\n\r\n', False, True),
            ('HTTP/1.0', b'GET /healthz HTTP/1.0\r\n\r\n', False, True),
            ('close before reading the answer',
             b'GET /healthz HTTP/1.1\r\n\r\n', False, False),
            ('reset before reading the answer',
             b'GET /healthz HTTP/1.1\r\n\r\n', True, False),
            ('bad chunk', w.build_request('POST', WEBHOOK, b'', [
                ('Transfer-Encoding', 'chunked')]) + b'zz\r\n', False, True),
            ('unknown Expect', w.build_request('POST', WEBHOOK, b'', [
                ('Expect', 'nope'), ('Content-Length', '5')]), False, True),
        ]
        with w.Server(args, env=ENV) as srv:
            for name, data, reset, wait in scenarios:
                with self.subTest(name):
                    c = w.Connection(srv.port)
                    try:
                        if data:
                            c.send(data)
                        if wait:
                            self.assertIsNotNone(c.wait_closed(w.slow(5)),
                                                 'never closed')
                        if reset:
                            c.sock.setsockopt(socket.SOL_SOCKET,
                                              socket.SO_LINGER,
                                              struct.pack('ii', 1, 0))
                    finally:
                        c.close()
                    r = w.request('GET', '/healthz', port=srv.port,
                                  timeout=5)
                    self.assertEqual(r.status, 200, r)


class Listen(unittest.TestCase):
    @unittest.skipUnless(w.have_ipv6_loopback(), 'no IPv6 loopback')
    def test_ipv6_loopback(self):
        with w.Server(env=ENV, listen=['[::1]:0']) as srv:
            self.assertEqual(srv.addresses[0][0], '::1')
            r = w.get(srv.port, WEBHOOK + '?echo=six', host='::1')
            self.assertEqual((r.status, r.body), (200, b'six'))
            r = w.post(srv.port, w.vector('v1'), V1_SECRET, host='::1')
            self.assertEqual(r.status, 200)
            with self.assertRaises(OSError):
                w.get(srv.port, '/healthz')   # not on IPv4

    def test_two_listen_flags(self):
        with w.Server(env=ENV, listen=['127.0.0.1:0', '127.0.0.1:0']) as srv:
            self.assertEqual(len(srv.ports), 2, srv.log())
            self.assertNotEqual(srv.ports[0], srv.ports[1])
            for port in srv.ports:
                r = w.get(port, WEBHOOK + '?echo=%d' % port)
                self.assertEqual(r.body, str(port).encode())


if __name__ == '__main__':
    w.main()
