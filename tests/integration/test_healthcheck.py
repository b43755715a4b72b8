"""whr healthcheck (issue 14, point 1): the container's HEALTHCHECK. It
GETs /readyz of a running whr and exits 0 on a 200, 1 otherwise, with
one line that says why; 2 for a usage error."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
import toolstest as t  # noqa: E402
from toolstest import reply  # noqa: E402

SECRET = '0123456789abcdef0123456789abcdef-health'


def healthcheck(*args, env=None):
    return w.run_whr(['healthcheck', *args], env=env)


class AgainstWhr(w.ServerTestCase):
    """A real whr serve: ready is 0."""

    server_env = {'MS_WebHookReceiverSecret_Custom': SECRET}

    def one_line(self, out):
        self.assertEqual(out.count('\n'), 1, out)
        self.assertTrue(out.endswith('\n'), out)

    def test_ready(self):
        url = 'http://127.0.0.1:%d/readyz' % self.srv.port
        status, out, err = healthcheck(url)
        self.assertEqual(status, 0, out + err)
        self.one_line(out)
        self.assertRegex(out, r'^healthcheck: ok: %s: 200 OK in .*: ready\n$'
                         % url)
        self.assertEqual(err, '')

    def test_default_url_follows_whr_listen(self):
        # The image listens on 0.0.0.0: the check goes to the loopback.
        for listen in ('0.0.0.0:%d', ' 127.0.0.1:%d , [::1]:1'):
            env = {'WHR_LISTEN': listen % self.srv.port}
            status, out, err = healthcheck(env=env)
            self.assertEqual(status, 0, (listen, out, err))
            self.assertIn('http://127.0.0.1:%d/readyz: 200' % self.srv.port,
                          out)

    def test_default_url_without_whr_listen(self):
        # 127.0.0.1:8080 unless something else listens there.
        status, out, err = healthcheck(env={'WHR_LISTEN': None})
        self.assertIn('http://127.0.0.1:8080/readyz', out)

    def test_another_path_is_not_ready(self):
        status, out, err = healthcheck('http://127.0.0.1:%d/nosuch'
                                       % self.srv.port)
        self.assertEqual(status, 1, out + err)
        self.one_line(out)
        self.assertRegex(out, r'^healthcheck: FAIL: .*/nosuch: 404 Not Found '
                              r'in .*: not found\n$')


class AgainstScripted(unittest.TestCase):
    """Answers whr would give when not ready, and worse."""

    def check(self, answer, rc=1, args=()):
        with t.Scripted([answer]) as srv:
            status, out, err = healthcheck(srv.url('/readyz'), *args)
            reqs = srv.requests
        self.assertEqual(status, rc, out + err)
        self.assertEqual(out.count('\n'), 1, out)
        self.assertEqual(len(reqs), 1)
        self.assertEqual((reqs[0].method, reqs[0].target), ('GET', '/readyz'))
        return out

    def test_503_says_the_reason(self):
        out = self.check(reply(503, 'inbox: disk full\nmore'))
        self.assertRegex(out, r'FAIL: .*: 503 Service Unavailable in .*: '
                              r'inbox: disk full \.\.\.\n$')

    def test_other_2xx_is_not_ready(self):
        self.assertIn('204 No Content', self.check(reply(204)))

    def test_redirect_is_not_followed(self):
        out = self.check(reply(302, '', [('Location', '/elsewhere')]))
        self.assertIn('302 Found', out)

    def test_timeout(self):
        start = time.monotonic()
        out = self.check(t.HANG, args=('--timeout', '300ms'))
        self.assertLess(time.monotonic() - start, w.timing_bound(5))
        self.assertIn('timeout', out.lower())

    def test_closed(self):
        out = self.check(t.CLOSE)
        self.assertRegex(out, r'^healthcheck: FAIL: ')

    def test_refused(self):
        port = t.closed_port()
        status, out, err = healthcheck('http://127.0.0.1:%d/readyz' % port)
        self.assertEqual(status, 1)
        self.assertIn('refused', out)
        self.assertEqual(out.count('\n'), 1, out)


class Usage(unittest.TestCase):

    def test_usage_errors(self):
        for args in (('--nosuch',), ('--timeout', 'soon'),
                     ('--timeout', '0'), ('http://a/', 'http://b/'),
                     ('ftp://127.0.0.1/readyz',)):
            status, out, err = healthcheck(*args)
            self.assertEqual(status, 2, (args, out, err))
            self.assertEqual(out, '')
            self.assertRegex(err, r'^whr healthcheck: ')

    def test_help(self):
        status, out, err = healthcheck('--help')
        self.assertEqual(status, 0)
        self.assertIn('Usage: whr healthcheck [URL]', out)
        status, out, err = w.run_whr(['--help'])
        self.assertRegex(out, r'(?m)^  healthcheck ')


if __name__ == '__main__':
    w.main()
