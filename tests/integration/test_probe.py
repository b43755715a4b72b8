"""whr probe (issue 3, point 2): the registration check as the sender
makes it (PROTOCOL.md §1, "Verification"), with the reason of every
failure; then, with a secret, one signed test delivery."""

import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
import toolstest as t  # noqa: E402
from toolstest import SECRET, run_tool, reply, echo  # noqa: E402

ECHO_LINE = r'(?m)^echo: GET http://127\.0\.0\.1:\d+%s\?echo=[0-9a-f]{32}$'


def probe(*args, env=None):
    return run_tool(['probe', *args], env=env)


class AgainstScripted(unittest.TestCase):
    """Receivers that answer the echo right, and in the usual wrong ways."""

    def probe_with(self, answer, *args, query='?a=1&b=2', rc=1):
        with t.Scripted([answer]) as srv:
            status, out, err = probe(srv.url(w.WEBHOOK + query), *args)
            reqs = srv.requests
        self.assertEqual(status, rc, out + err)
        self.assertEqual(len(reqs), 1, reqs)
        self.assertEqual(reqs[0].method, 'GET')
        self.assertRegex(reqs[0].target,
                         r'^%s\?echo=[0-9a-f]{32}$' % w.WEBHOOK)
        return out, reqs[0]

    def test_right_answer_passes_and_query_is_replaced(self):
        out, req = self.probe_with(echo(), rc=0)
        self.assertRegex(out, ECHO_LINE % w.WEBHOOK)
        self.assertIn('echo: pass: 200 OK', out)
        self.assertIn('delivery: skipped: no secret', out)
        self.assertTrue(out.endswith('probe: pass\n'), out)
        self.assertEqual(req.query.count('='), 1)
        self.assertIsNone(req.header('User-Agent'))
        self.assertIsNone(req.header('Content-Length'))
        self.assertEqual(req.header('Host'),
                         '127.0.0.1:%s' % req.header('Host').split(':')[1])

    def test_trailing_newline(self):
        out, _ = self.probe_with(echo(lambda v: v + '\n'))
        self.assertIn('echo: FAIL: the body has a trailing line end', out)
        self.assertRegex(out, r'got "[0-9a-f]{32}\\n" \(33 bytes\)')
        self.assertIn('probe: FAIL (1 of 1 checks failed)', out)

    def test_in_quotes(self):
        out, _ = self.probe_with(echo(lambda v: '"%s"' % v))
        self.assertIn('echo: FAIL: the body is in quotes', out)

    def test_json(self):
        out, _ = self.probe_with(echo(lambda v: json.dumps({'echo': v}),
                                      'application/json'))
        self.assertIn('echo: FAIL: the body is JSON', out)

    def test_other_body(self):
        out, _ = self.probe_with(echo(lambda v: 'hello\x01' + v[:4]))
        self.assertIn('echo: FAIL: the body is not the echo value', out)
        self.assertRegex(out, r'expected "[0-9a-f]{32}", got "hello\\x01'
                              r'[0-9a-f]{4}" \(10 bytes\)')

    def test_404(self):
        out, _ = self.probe_with(reply(404, 'no such hook\nsecond line'))
        self.assertRegex(out, r'echo: FAIL: 404 Not Found in .*; the sender '
                              r'wants a 2xx: no such hook \.\.\.\n')

    def test_redirect(self):
        out, _ = self.probe_with(reply(302, '', [('Location',
                                                  'https://example.com/new')]))
        self.assertIn('echo: FAIL: 302 Found, a redirect to '
                      'https://example.com/new.', out)
        self.assertIn('as a GET without the body', out)
        self.assertIn('the event is lost', out)

    def test_timeout(self):
        out, _ = self.probe_with(t.HANG, '--timeout', '300ms')
        self.assertRegex(out, r'echo: FAIL: timeout: no answer from '
                              r'127\.0\.0\.1:\d+ within 300 ms')

    def test_closed_without_answer(self):
        out, _ = self.probe_with(t.CLOSE)
        self.assertIn('echo: FAIL: the server closed the connection without '
                      'answering', out)

    def test_headers_sent(self):
        out, req = self.probe_with(echo(), '-H', 'X-Probe: 1', rc=0)
        self.assertEqual(req.header('X-Probe'), '1')

    def test_delivery_after_echo(self):
        with t.Scripted([echo(), reply(202)]) as srv:
            rc, out, err = probe(srv.url(w.WEBHOOK + '?x=1'), '--secret',
                                 SECRET, '--sample', 'CourseCompleted')
            reqs = srv.requests
        self.assertEqual(rc, 0, out + err)
        self.assertEqual([r.method for r in reqs], ['GET', 'POST'])
        post = reqs[1]
        self.assertEqual(post.target, w.WEBHOOK + '?x=1')
        self.assertEqual(post.header('ms-signature'),
                         w.sign(SECRET, post.body))
        self.assertEqual(post.header('Content-Type'), w.JSON_TYPE)
        body = json.loads(post.body)
        self.assertEqual(body['Notifications'][0]['Action'],
                         'CourseCompleted')
        self.assertEqual(body['Attempt'], 1)
        self.assertIn(b'\r\n  "Attempt": 1,\r\n', post.body)
        self.assertIn('delivery: pass: 202 Accepted', out)

    def test_delivery_failure_reported(self):
        with t.Scripted([echo(), reply(500, 'handler crashed')]) as srv:
            rc, out, err = probe(srv.url(), '--secret', SECRET)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('echo: pass', out)
        self.assertRegex(out, r'delivery: FAIL: 500 Internal Server Error in '
                              r'.*: handler crashed \(the sender would retry')

    def test_noecho_skips_the_echo(self):
        for query in ('?noecho', '?NOECHO=1', '?x=1&NoEcho=', '?no%65cho'):
            with self.subTest(query=query):
                with t.Scripted([reply(500)]) as srv:
                    rc, out, err = probe(srv.url(w.WEBHOOK + query))
                    time.sleep(0.05)
                    self.assertEqual(srv.requests, [])
                self.assertEqual(rc, 0, out + err)
                self.assertIn('echo: skipped: the URL has a noecho '
                              'parameter', out)
                self.assertIn('probe: nothing was checked', out)

    def test_not_noecho(self):
        for query in ('?noechoes=1', '?x=noecho', '?no+echo'):
            with self.subTest(query=query):
                with t.Scripted([echo()]) as srv:
                    rc, out, err = probe(srv.url(w.WEBHOOK + query))
                    self.assertEqual(len(srv.requests), 1)
                self.assertEqual(rc, 0, out + err)

    def test_noecho_still_delivers(self):
        with t.Scripted([reply(200)]) as srv:
            rc, out, err = probe(srv.url(w.WEBHOOK + '?NoEcho'), '--secret',
                                 SECRET)
            reqs = srv.requests
        self.assertEqual(rc, 0, out + err)
        self.assertEqual([(r.method, r.target) for r in reqs],
                         [('POST', w.WEBHOOK + '?NoEcho')])


class Unreachable(unittest.TestCase):

    def test_connection_refused(self):
        port = t.closed_port()
        rc, out, err = probe('http://127.0.0.1:%d/hook' % port, '--secret',
                             SECRET)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('echo: FAIL: connection refused by 127.0.0.1:%d'
                      % port, out)
        self.assertIn('delivery: skipped: the echo got no answer', out)

    def test_dns_failure(self):
        rc, out, err = probe('http://whr-test.invalid/hook')
        self.assertEqual(rc, 1, out + err)
        self.assertIn("echo: FAIL: DNS: cannot resolve 'whr-test.invalid'",
                      out)


class AgainstWhrServe(w.ServerTestCase):

    server_env = {'MS_WebHookReceiverSecret_Custom': SECRET}

    def url(self, path=w.WEBHOOK):
        return 'http://127.0.0.1:%d%s' % (self.srv.port, path)

    def test_pass(self):
        rc, out, err = probe(self.url())
        self.assertEqual(rc, 0, out + err)
        self.assertIn('echo: pass: 200 OK', out)

    def test_pass_with_the_secret(self):
        rc, out, err = probe(self.url(), '--secret', SECRET, '-v')
        self.assertEqual(rc, 0, out + err)
        self.assertIn('delivery: pass: 200 OK', out)
        self.assertRegex(out, r'(?m)^> ms-signature: sha256=[0-9A-F]{64}$')
        self.assertTrue(out.endswith('probe: pass\n'), out)

    def test_wrong_secret_fails_with_the_reason(self):
        rc, out, err = probe(self.url(), '--secret', SECRET[::-1])
        self.assertEqual(rc, 1, out + err)
        self.assertIn('echo: pass', out)
        self.assertRegex(out, r'delivery: FAIL: 400 Bad Request in .*: '
                              r'ms-signature does not match the body \(the '
                              r'receiver refused the signature')

    def test_unknown_id(self):
        rc, out, err = probe(self.url(w.WEBHOOK + '/nosuch'))
        self.assertEqual(rc, 1, out + err)
        self.assertIn('echo: FAIL: 404 Not Found', out)


class HTTPS(unittest.TestCase):
    """whr serve behind nginx terminating TLS with a private CA."""

    @classmethod
    def setUpClass(cls):
        cls.srv = w.Server(env={'MS_WebHookReceiverSecret_Custom': SECRET})
        with w.cleaned_up_on_error(cls.srv):
            cls.tls = t.NginxTLS(cls.srv.port)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.tls.stop()
        finally:
            w.stop_and_clean(cls.srv)

    def test_trusted_ca_passes(self):
        for host in ('localhost', '127.0.0.1'):
            with self.subTest(host=host):
                rc, out, err = probe(self.tls.url(host=host), '--cacert',
                                     self.tls.cacert, '--secret', SECRET)
                self.assertEqual(rc, 0, out + err)
                self.assertIn('echo: pass', out)
                self.assertIn('delivery: pass', out)

    def test_unknown_ca_fails_naming_the_problem(self):
        rc, out, err = probe(self.tls.url(), '--secret', SECRET)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r'echo: FAIL: TLS handshake with '
                              r'127\.0\.0\.1:\d+ failed: certificate verify '
                              r'failed: unable to get local issuer '
                              r'certificate')

    def test_insecure_passes(self):
        rc, out, err = probe(self.tls.url(), '--insecure')
        self.assertEqual(rc, 0, out + err)

    def test_other_host_fails_naming_the_mismatch(self):
        rc, out, err = probe(self.tls.url(other=True), '--cacert',
                             self.tls.cacert)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('certificate verify failed: hostname mismatch', out)

    def test_plain_http_to_https_port(self):
        url = self.tls.url().replace('https://', 'http://')
        rc, out, err = probe(url)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('echo: FAIL: 400 Bad Request', out)

    def test_https_to_plain_port(self):
        rc, out, err = probe('https://127.0.0.1:%d/' % self.srv.port)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('wrong version number (is it plain HTTP', out)


class Usage(unittest.TestCase):

    def test_usage_errors(self):
        for args, message in (
                ([], 'which URL?'),
                (['http://a/', 'http://b/'], 'one URL only'),
                (['not a url'], 'not an http:// or https:// URL'),
                (['http://[::1/'], 'not a valid URL'),
                (['http://a/', '--nosuch'], "unknown option '--nosuch'"),
                (['http://a/', '--timeout', '0'], '--timeout'),
                (['http://a/', '--secret', SECRET, '--sample', 'Nope'],
                 "no sample 'Nope'"),
                (['https://a/', '--cacert', '/nonexistent'],
                 'cannot read /nonexistent')):
            with self.subTest(args=args):
                rc, out, err = probe(*args)
                self.assertEqual(rc, 2, out + err)
                self.assertIn(message, err)

    def test_help(self):
        rc, out, err = probe('--help')
        self.assertEqual(rc, 0, err)
        for text in ('--sample', 'default\n                         '
                     'CourseEnrollment', '--secret ', '--secret-file',
                     'WHR_SECRET', '--header', '--timeout', 'default 100s',
                     '--cacert', '--insecure', '--verbose', 'noecho',
                     'Exit status: 0', '2 usage'):
            self.assertIn(text, out)
        self.assertIsNotNone(re.search(r'echo=<32 random lowercase hex',
                                       out))


if __name__ == '__main__':
    w.main()
