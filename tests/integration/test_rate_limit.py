"""The rate limit on failures and the client it counts (issue 14):
after its burst of failed requests a client gets 429 with Retry-After
until it has waited, another client is not touched, good deliveries from
a limited client are still accepted; the client is the peer, or behind a
trusted proxy the rightmost untrusted X-Forwarded-For entry, in the log
and in the limit alike, and a header from anyone else changes nothing."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
OTHER = '127.0.0.2'
BAD = w.secret('not-the-secret')


def send(port, body=None, secret=BAD, path=WEBHOOK, forwarded=None,
         source=None, signature=None):
    """One POST on a connection of its own, from @source (an address of
    the loopback), with X-Forwarded-For @forwarded."""
    body = body if body is not None else w.delivery()
    headers = [('Content-Type', w.JSON_TYPE),
               ('ms-signature', signature or w.sign(secret, body))]
    if forwarded is not None:
        headers.append(('X-Forwarded-For', forwarded))
    with w.Connection(port, source=source) as c:
        return c.request('POST', path, body, headers)


def limited(test, r):
    test.assertEqual(r.status, 429, r)
    test.assertRegex(r.header('Retry-After') or '', r'^[1-9][0-9]*$', r)
    test.assertIn('rate-limit', r.body.decode())
    w.assert_error_body(test, r, [V1_SECRET])
    return int(r.header('Retry-After'))


class RateLimit(unittest.TestCase):
    # Three failures at once, then one every 10 s: within a test, no
    # token comes back by itself, however slowly whr runs.
    ARGS = ['--rate-limit', '6/m', '--rate-limit-burst', '3']

    def test_failures_then_429(self):
        with w.Server(self.ARGS, env=ENV) as srv:
            good = w.delivery()
            for _ in range(3):
                self.assertEqual(send(srv.port).status, 400)
            # Over it: the failures the head decides (no body read) and
            # those its MAC decides, and an id without a secret alike.
            wait = limited(self, send(srv.port, signature='md5=00'))
            self.assertLessEqual(wait, 10)
            limited(self, send(srv.port))
            limited(self, send(srv.port, path=WEBHOOK + '/nobody'))
            # A delivery that verifies is never limited, nor counted.
            for _ in range(3):
                r = send(srv.port, good, V1_SECRET)
                self.assertEqual(r.status, 200, r)
            limited(self, send(srv.port))
            # Another client is not touched.
            self.assertEqual(send(srv.port, source=OTHER).status, 400)
            page = w.get(srv.port, '/metrics').body.decode()
            self.assertIn('whr_requests_total{receiver="",status="429"} 3\n',
                          page)
            self.assertIn('whr_requests_total{receiver="unknown",'
                          'status="429"} 1\n', page)
            self.assertIn('whr_requests_total{receiver="",status="400"} 4\n',
                          page)
            self.assertIn('whr_deliveries_total{receiver="",result='
                          '"duplicate"} 2\n', page)
            # What failed still counts by reason.
            self.assertIn('whr_signature_failures_total{reason='
                          '"malformed"} 1\n', page)
            f = w.log_fields(srv.request_line(0, pattern=r'status=429'))
            self.assertRegex(f['remote'], r'^127\.0\.0\.1:\d+$')

    def test_cools_down(self):
        # A token every half second.
        with w.Server(['--rate-limit', '2/s', '--rate-limit-burst', '1'],
                      env=ENV) as srv:
            self.assertEqual(send(srv.port).status, 400)
            for _ in range(10):
                r = send(srv.port)
                if r.status == 429:
                    break
                self.assertEqual(r.status, 400, r)
            wait = limited(self, r)
            self.assertEqual(wait, 1)
            time.sleep(wait)
            self.assertEqual(send(srv.port).status, 400)

    def test_off_by_default(self):
        with w.Server(env=ENV) as srv:
            for _ in range(30):
                self.assertEqual(send(srv.port).status, 400)

    def test_a_spoofed_header_changes_nothing(self):
        # No trusted proxy: X-Forwarded-For is the client's own word.
        with w.Server(self.ARGS, env=ENV) as srv:
            for i in range(3):
                r = send(srv.port, forwarded='203.0.113.%d' % i)
                self.assertEqual(r.status, 400, r)
            limited(self, send(srv.port, forwarded='203.0.113.99'))
            mark = srv.mark()
            limited(self, send(srv.port, forwarded='198.51.100.1'))
            self.assertNotIn('client', w.log_fields(srv.request_line(mark)))


class BehindATrustedProxy(unittest.TestCase):
    ARGS = ['--trusted-proxy', '127.0.0.1', '--rate-limit', '6/m',
            '--rate-limit-burst', '2']

    def test_the_client_is_the_rightmost_untrusted_entry(self):
        with w.Server(self.ARGS, env=ENV) as srv:
            # nginx appends what it saw; the left part is the client's
            # own word.
            mark = srv.mark()
            r = send(srv.port, forwarded='10.9.9.9, 203.0.113.7')
            self.assertEqual(r.status, 400, r)
            f = w.log_fields(srv.request_line(mark))
            self.assertEqual(f['client'], '203.0.113.7')
            self.assertRegex(f['remote'], r'^127\.0\.0\.1:\d+$')
            self.assertEqual(send(srv.port, forwarded='203.0.113.7').status,
                             400)
            mark = srv.mark()
            limited(self, send(srv.port, forwarded='203.0.113.7'))
            self.assertEqual(w.log_fields(srv.request_line(mark))['client'],
                             '203.0.113.7')
            # The proxy itself and its other clients are not limited.
            self.assertEqual(send(srv.port, forwarded='203.0.113.8').status,
                             400)
            self.assertEqual(send(srv.port).status, 400)
            # A limited client cannot get out by writing another address
            # on the left...
            limited(self, send(srv.port, forwarded='198.51.100.1, '
                                                   '203.0.113.7'))
            # ...nor frame another one by writing it there.
            mark = srv.mark()
            r = send(srv.port, forwarded='203.0.113.7, 203.0.113.9')
            self.assertEqual(r.status, 400, r)
            self.assertEqual(w.log_fields(srv.request_line(mark))['client'],
                             '203.0.113.9')
            # Its good deliveries still pass.
            r = send(srv.port, w.delivery(), V1_SECRET,
                     forwarded='203.0.113.7')
            self.assertEqual(r.status, 200, r)

    def test_from_an_untrusted_peer_the_header_is_ignored(self):
        with w.Server(self.ARGS, env=ENV) as srv:
            for _ in range(2):
                r = send(srv.port, forwarded='203.0.113.7', source=OTHER)
                self.assertEqual(r.status, 400, r)
            # The peer is the client: limited, whatever it says.
            mark = srv.mark()
            limited(self, send(srv.port, forwarded='203.0.113.50',
                               source=OTHER))
            f = w.log_fields(srv.request_line(mark))
            self.assertNotIn('client', f)
            self.assertRegex(f['remote'], r'^127\.0\.0\.2:\d+$')
            # The address it named was never counted.
            self.assertEqual(send(srv.port, forwarded='203.0.113.7').status,
                             400)
            self.assertEqual(send(srv.port, forwarded='203.0.113.50')
                             .status, 400)


if __name__ == '__main__':
    w.main()
