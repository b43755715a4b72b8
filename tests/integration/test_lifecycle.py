"""Start, graceful shutdown on SIGTERM and SIGINT, and failures to
listen."""

import contextlib
import errno
import os
import re
import signal
import sys
import tempfile
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


@contextlib.contextmanager
def half_sent(srv):
    """A connection to @srv on which head_and_half()'s first part is sent
    and read by whr: (the connection, the rest to send)."""
    sent, rest = head_and_half()
    with w.Connection(srv.port) as c:
        c.send(sent)
        w.wait_server_read(c)
        yield c, rest


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
            with half_sent(srv) as (c, rest):
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
            with half_sent(srv) as (c, _):
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


class HandlersLeftRunning(unittest.TestCase):
    """A handler still running when the shutdown timeout ends: it is left
    running, the process exits with status 1 and says which, keeps the
    handlers' state (no destroy callback, no plugin unloaded), and the
    notification runs again at the next start."""

    TIMEOUT = 0.3

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-left-')
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, 'data')
        self.record = os.path.join(self.tmp.name, 'record.txt')

    def args(self, *more):
        return ['--data-dir', self.data, '--shutdown-timeout',
                '%dms' % (self.TIMEOUT * 1000), *more]

    def env(self, **more):
        return dict(ENV, WHR_RECORD=self.record, **more)

    def state(self):
        return [r[0] for r in w.inbox_query(
            self.data, 'SELECT state FROM notifications ORDER BY id')]

    def stop_left_running(self, srv, handler, exit_within):
        """SIGTERM while @handler blocks: status 1, in time, logged."""
        mark = srv.mark()
        start = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        status = srv.wait_exit(w.slow(10))
        took = time.monotonic() - start
        self.assertEqual(status, 1, srv.log())
        self.assertLess(took, w.timing_bound(exit_within), srv.log())
        log = srv.check_exit(1)
        since = srv.log(since=mark)
        self.assertRegex(since, r'(?m)error +worker \d+ is still in handler '
                         r'%s \(notification 1\) after the shutdown '
                         r'timeout; leaving it' % re.escape(handler))
        self.assertRegex(since, r'(?m)error +stopped with handlers still '
                         r'running after the shutdown timeout: %s; '
                         % re.escape(handler))
        self.assertNotRegex(log, r'(?m) stopped$')
        # Not a crash: no sanitizer or valgrind report either.
        self.assertNotRegex(log, r'ERROR: (Address|Leak)Sanitizer|'
                            r'runtime error:|Invalid (read|write)')
        return log

    def test_blocked_handler_is_left_and_its_state_kept(self):
        body = w.delivery(id='7a' * 16, notifications=[{'Action': 'a1'}])
        with w.Server(self.args(), program='recorder',
                      env=self.env(WHR_RECORD_SLEEP_MS='60000')) as srv:
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            srv.records(2)          # a1, then "all" blocks
            log = self.stop_left_running(srv, 'all', self.TIMEOUT + 1.5)
            self.assertIn('handlers are still running: the receiver is '
                          'kept and its handlers\' destroy callbacks are '
                          'not called', log)
            recs = srv.records()
        # Nothing destroyed under the blocked handler, nothing after it.
        self.assertEqual([r.handler for r in recs], ['a1', 'all'])
        self.assertEqual(self.state(), ['pending'])
        # Redone at the next start, from the first handler (the outcome
        # of a1 was not written: at least once).
        with w.Server(self.args(), program='recorder',
                      env=self.env()) as srv:
            recs = srv.records(5)
            self.assertEqual([r.handler for r in recs],
                             ['a1', 'all', 'a1', 'all', 'all2'])
            deadline = time.monotonic() + w.slow(10)
            while self.state() != ['done']:
                self.assertLess(time.monotonic(), deadline, self.state())
                time.sleep(0.02)
            log = srv.stop()
        self.assertRegex(log, r'(?m) stopped$')
        self.assertEqual(sorted(r.handler for r in srv.records()[5:]),
                         ['destroy'] * 6)

    def test_receiver_left_with_handlers_refuses_more(self):
        # whr_receiver_run() returned -EBUSY: adding a handler and running
        # again are refused (-EBUSY, logged), not attempted.
        body = w.delivery(notifications=[{'Action': 'a1'}])
        env = self.env(WHR_RECORD_SLEEP_MS='60000', WHR_RECORD_AGAIN='1')
        with w.Server(self.args(), program='recorder', env=env) as srv:
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            srv.records(2)          # a1, then "all" blocks
            log = self.stop_left_running(srv, 'all', self.TIMEOUT + 1.5)
        self.assertIn('recorder: after -EBUSY: add_handler %d, run %d'
                      % (-errno.EBUSY, -errno.EBUSY), log)
        self.assertRegex(log, r'(?m)error +cannot add a handler: handlers '
                         r'of the last run are still running')
        self.assertRegex(log, r'(?m)error +cannot run: handlers of the '
                         r'last run are still running')
        self.assertEqual(self.state(), ['pending'])

    def test_handler_returning_late_starts_no_other(self):
        # "all" returns after the timeout, while the process is still
        # there (the recorder waits before it exits): its worker stops
        # at once, without calling "all2" or writing anything.
        sleep_s = self.TIMEOUT + 0.5
        body = w.delivery(notifications=[{'Action': 'a1'}])
        env = self.env(WHR_RECORD_SLEEP_MS='%d' % (sleep_s * 1000),
                       WHR_RECORD_EXIT_DELAY_MS='%d' % (w.slow(1.5) * 1000))
        with w.Server(self.args('--log-level', 'debug'), program='recorder',
                      env=env) as srv:
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            srv.records(2)
            log = self.stop_left_running(srv, 'all',
                                         sleep_s + w.slow(1.5) + 1.5)
            recs = srv.records()
        self.assertRegex(log, r'handler finished .*handler=all ')
        self.assertEqual([r.handler for r in recs], ['a1', 'all'])
        self.assertEqual(self.state(), ['pending'])

    def test_whr_serve_exits_1_and_keeps_the_handlers(self):
        started = os.path.join(self.tmp.name, 'started')
        plugin = os.environ['WHR_TEST_STUCK_PLUGIN']
        env = dict(ENV, WHR_TEST_STUCK_STARTED=started,
                   WHR_TEST_STUCK_MS='5000')
        with w.Server(self.args('--no-enrollments', '--plugin', plugin),
                      env=env) as srv:
            body = w.delivery(notifications=[{'Action': 'a1'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            deadline = time.monotonic() + w.slow(10)
            while not os.path.exists(started):
                self.assertLess(time.monotonic(), deadline, srv.log())
                time.sleep(0.01)
            self.stop_left_running(srv, 'stuck', self.TIMEOUT + 1.5)
        self.assertEqual(self.state(), ['pending'])


class Listening(unittest.TestCase):
    def test_port_in_use(self):
        port = w.restart_port()
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
        port = w.restart_port()
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
        # Outside the ephemeral range: no client connection can take it
        # as its source port between the two runs.
        port = w.restart_port()
        with w.Server(env=ENV, listen=['127.0.0.1:%d' % port]) as srv:
            self.assertEqual(srv.port, port)
        with w.Server(env=ENV, listen=['127.0.0.1:%d' % port]) as srv:
            self.assertEqual(srv.port, port)


if __name__ == '__main__':
    w.main()
