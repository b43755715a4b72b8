"""Start, graceful shutdown on SIGTERM and SIGINT, and failures to
listen."""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
SIGNALS = [('SIGTERM', signal.SIGTERM), ('SIGINT', signal.SIGINT)]


def head_and_half(body=None):
    """A signed POST cut in the middle of its body: (sent, rest)."""
    body = body if body is not None else w.vector('v1')
    req = w.build_request('POST', WEBHOOK, body, [
        ('Content-Type', w.JSON_TYPE), ('ms-signature', w.sign(V1_SECRET,
                                                               body))])
    cut = len(req) - len(body) // 2
    return req[:cut], req[cut:]


class Shutdown(unittest.TestCase):
    def test_signal_with_no_traffic_exits_0_quickly(self):
        for name, sig in SIGNALS:
            with self.subTest(signal=name):
                with w.Server(env=ENV) as srv:
                    start = time.monotonic()
                    srv.send_signal(sig)
                    self.assertEqual(srv.wait_exit(w.slow(10)), 0,
                                     srv.log())
                    self.assertLess(time.monotonic() - start,
                                    w.timing_bound(2))
                    log = srv.check_exit(0)
                    self.assertIn(name, log)
                    self.assertRegex(log, r'(?m) stopped$')

    def test_idle_keep_alive_connection_does_not_delay_exit(self):
        with w.Server(['--shutdown-timeout', '20s'], env=ENV) as srv:
            with w.Connection(srv.port) as c:
                self.assertEqual(c.request('GET', WEBHOOK + '?echo=1').body,
                                 b'1')
                start = time.monotonic()
                srv.send_signal(signal.SIGTERM)
                self.assertEqual(srv.wait_exit(w.slow(10)), 0, srv.log())
                self.assertLess(time.monotonic() - start, w.timing_bound(2))
                self.assertIsNotNone(c.wait_closed(w.slow(5)))
            srv.check_exit(0)

    def test_request_in_progress_is_finished(self):
        for name, sig in SIGNALS:
            with self.subTest(signal=name):
                self.finish_after_signal(sig)

    def finish_after_signal(self, sig):
        with w.Server(['--shutdown-timeout', '20s'], env=ENV) as srv:
            sent, rest = head_and_half()
            with w.Connection(srv.port) as c:
                c.send(sent)
                w.wait_server_read(c)
                mark = srv.mark()
                srv.send_signal(sig)
                srv.wait_log(r'shutting down', since=mark)
                # No new connections once it shuts down...
                with self.assertRaises(ConnectionRefusedError):
                    w.Connection(srv.port, timeout=2)
                # ... but the request in progress is waited for.
                self.assertTrue(srv.running(), srv.log())
                self.assertFalse(c.readable_within(0.2))
                c.send(rest)
                r = c.read_response('POST')
                self.assertEqual(r.status, 200, r)
                self.assertEqual((r.header('Connection') or '').lower(),
                                 'close', r)
                self.assertEqual(srv.wait_exit(w.slow(10)), 0, srv.log())
            log = srv.check_exit(0)
            self.assertRegex(log, r'request method=POST .*status=200')
            self.assertRegex(log, r'(?m) stopped$')
            self.assertNotIn('shutdown-timeout reached', log)

    def test_reply_being_written_is_finished_before_exit(self):
        # A reply the client reads slowly (a small receive window) is still
        # being written when the request is done: shutting down must wait
        # for it to be sent, not just for the handler to finish.
        value = ''.join('%06d' % i for i in range(150000))
        with w.Server(['--shutdown-timeout', '20s',
                       '--max-header-size', '1MiB'], env=ENV) as srv:
            req = w.build_request('GET', WEBHOOK + '?echo=' + value)
            with w.Connection(srv.port, rcvbuf=4096, mss=1000) as c:
                c.send(req[:-10])
                w.wait_server_read(c)
                srv.send_signal(signal.SIGTERM)
                srv.wait_log(r'shutting down')
                c.send(req[-10:])
                # A slow client: it starts reading only after a while (not
                # a synchronisation: the reply must wait for it either way).
                time.sleep(0.3)
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(len(r.body), len(value))
                self.assertEqual(r.body, value.encode())
                self.assertEqual(srv.wait_exit(w.slow(10)), 0, srv.log())
            srv.check_exit(0)

    def test_shutdown_timeout_ends_a_request_that_never_completes(self):
        with w.Server(['--shutdown-timeout', '300ms'], env=ENV) as srv:
            sent, rest = head_and_half()
            with w.Connection(srv.port) as c:
                c.send(sent)
                w.wait_server_read(c)
                start = time.monotonic()
                srv.send_signal(signal.SIGTERM)
                status = srv.wait_exit(w.slow(10))
                took = time.monotonic() - start
                self.assertEqual(status, 0, srv.log())
                self.assertGreater(took, 0.2)
                self.assertLess(took, w.timing_bound(1.5))
                self.assertIsNotNone(c.wait_closed(w.slow(5)))
            log = srv.check_exit(0)
            self.assertIn('shutdown-timeout reached', log)

    def test_several_connections_in_progress(self):
        with w.Server(['--shutdown-timeout', '20s'], env=ENV) as srv:
            conns = [w.Connection(srv.port) for _ in range(3)]
            try:
                halves = [head_and_half() for _ in conns]
                for c, (sent, _) in zip(conns, halves):
                    c.send(sent)
                for c in conns:
                    w.wait_server_read(c)
                srv.send_signal(signal.SIGTERM)
                srv.wait_log('shutting down')
                for c, (_, rest) in zip(conns, halves):
                    self.assertTrue(srv.running())
                    c.send(rest)
                    self.assertEqual(c.read_response('POST').status, 200)
                self.assertEqual(srv.wait_exit(w.slow(10)), 0, srv.log())
            finally:
                for c in conns:
                    c.close()
            srv.check_exit(0)


class Listening(unittest.TestCase):
    def test_port_in_use(self):
        port = w.free_port()
        with w.Server(env=ENV, listen=['127.0.0.1:%d' % port]) as first:
            self.assertEqual(first.port, port)
            rc, out, err = w.run_whr(['--listen', '127.0.0.1:%d' % port],
                                     ENV, program='serve')
            self.assertEqual(rc, 1, err)
            self.assertIn('127.0.0.1:%d' % port, err)
            self.assertRegex(err, r'(?i)in use')
            # The first one is unharmed.
            self.assertEqual(w.get(port, WEBHOOK + '?echo=ok').body, b'ok')

    def test_second_address_in_use_stops_start_up(self):
        port = w.free_port()
        with w.Server(env=ENV, listen=['127.0.0.1:%d' % port]):
            rc, out, err = w.run_whr(['--listen', '127.0.0.1:0',
                                      '--listen', '127.0.0.1:%d' % port],
                                     ENV, program='serve')
            self.assertEqual(rc, 1, err)
            self.assertNotRegex(err, r'whr \S+ ready:')

    def test_address_not_on_this_machine(self):
        rc, out, err = w.run_whr(['--listen', '192.0.2.1:0'], ENV,
                                 program='serve')
        self.assertEqual(rc, 1, err)
        self.assertIn('192.0.2.1', err)

    def test_port_is_free_again_after_exit(self):
        with w.Server(env=ENV) as srv:
            port = srv.port
        with w.Server(env=ENV, listen=['127.0.0.1:%d' % port]) as srv:
            self.assertEqual(srv.port, port)


if __name__ == '__main__':
    w.main()
