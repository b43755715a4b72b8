"""whr send (issue 3, point 1): deliveries exactly as the ASP.NET sender
makes them (PROTOCOL.md §1), against whr serve and against scripted
receivers that record the raw requests."""

import json
import os
import re
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
import toolstest as t  # noqa: E402
from toolstest import SECRET, run_tool, reply  # noqa: E402

ID = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'


def body_json(req):
    return json.loads(req.body.decode('utf-8'))


class AgainstWhrServe(w.ServerTestCase):
    """The real receiver accepts what whr send sends."""

    server_env = {'MS_WebHookReceiverSecret_Custom':
                  '%s, v0=%s' % (SECRET, w.V0_SECRET)}

    def url(self, path=w.WEBHOOK):
        return 'http://127.0.0.1:%d%s' % (self.srv.port, path)

    def test_action_and_data_delivered(self):
        rc, out, err = run_tool(['send', self.url(), '--secret', SECRET,
                                 '--action', 'CourseCompleted', '--data',
                                 '{"Course": {"Id": "c1"}, "Users": []}'])
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r'(?m)^attempt 1: 200 OK in [0-9.]+ m?s$')
        self.assertRegex(out, r'(?m)^delivered: Id [0-9a-f]{32} on '
                              r'attempt 1$')

    def test_every_sample_delivered(self):
        for action in t.ACTIONS:
            with self.subTest(action=action):
                rc, out, err = run_tool(['send', self.url(), '--sample',
                                         action], env={'WHR_SECRET':
                                                       SECRET})
                self.assertEqual(rc, 0, out + err)
                self.assertIn('200 OK', out)

    def test_several_notifications_and_sets_delivered(self):
        rc, out, err = run_tool(['send', self.url(), '--secret', SECRET,
                                 '--sample', 'CourseEnrollment',
                                 '--set', 'Course.Title=Fire & Ice',
                                 '--sample', 'CourseCompleted',
                                 '--action', 'SomethingNew', '--data',
                                 '{"X": 1}'])
        self.assertEqual(rc, 0, out + err)
        self.assertIn('3 notifications', out)

    def test_same_id_sent_again_is_a_duplicate(self):
        # The inbox recognises a resend by its Id: acknowledged, counted,
        # not stored or handled again.
        did = os.urandom(16).hex()
        for attempt in (1, 2):
            mark = self.srv.mark()
            rc, out, err = run_tool(['send', self.url(), '--secret', SECRET,
                                     '--sample', 'CourseCompleted',
                                     '--id', did])
            self.assertEqual(rc, 0, out + err)
            line = self.srv.request_line(mark)
            self.assertIn('delivery=%s' % did, line)
            if attempt == 1:
                self.assertNotIn('duplicate=true', line)
            else:
                self.assertIn('duplicate=true', line)

    def test_vector_v0_delivered(self):
        rc, out, err = run_tool(['send', self.url(w.WEBHOOK + '/v0'),
                                 '--file', w.data_path('vectors',
                                                       'v0.body.bin'),
                                 '--secret', w.V0_SECRET])
        self.assertEqual(rc, 0, out + err)
        self.assertIn('200 OK', out)

    def test_wrong_secret_not_delivered(self):
        rc, out, err = run_tool(['send', self.url(), '--secret',
                                 SECRET + 'x', '--action', 'a1'])
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r'attempt 1: 400 Bad Request in .*: '
                              r'ms-signature')
        self.assertIn('not delivered', out)

    def test_count_and_concurrency_against_whr(self):
        rc, out, err = run_tool(['send', self.url(), '--secret', SECRET,
                                 '--sample', 'CourseStarted', '--count',
                                 '10', '--concurrency', '3'])
        self.assertEqual(rc, 0, out + err)
        self.assertIn('delivered 10, failed 0', out)


class VectorSignature(unittest.TestCase):

    def test_dry_run_prints_the_vector_header_and_bytes(self):
        body = w.vector('v1')
        rc, out, err = run_tool(['send', 'http://127.0.0.1:9/hook',
                                 '--file', w.data_path('vectors',
                                                       'v1.body.bin'),
                                 '--secret', w.V1_SECRET, '--dry-run'])
        self.assertEqual(rc, 0, err)
        self.assertIn('\r\nms-signature: %s\r\n' % w.V1_SIGNATURE, out)
        head, _, sent = out.encode('utf-8').partition(b'\r\n\r\n')
        self.assertEqual(sent, body)
        self.assertTrue(head.startswith(b'POST /hook HTTP/1.1\r\n'), head)
        self.assertIn(b'\r\nContent-Length: 1078', head)
        self.assertIn(b'\r\nHost: 127.0.0.1:9', head)
        self.assertNotIn(w.V1_SECRET, out + err)

    def test_dry_run_sends_nothing(self):
        with t.Scripted([reply(200)]) as srv:
            rc, out, err = run_tool(['send', srv.url(), '--secret', SECRET,
                                     '--action', 'a1', '--dry-run'])
            self.assertEqual(rc, 0, err)
            time.sleep(0.1)
            self.assertEqual(srv.requests, [])
        self.assertIn('POST %s HTTP/1.1' % w.WEBHOOK, out)


class Format(unittest.TestCase):
    """The raw request, recorded by a scripted receiver."""

    def send(self, *args, script=(reply(200),), rc=0, env=None):
        with t.Scripted(list(script)) as srv:
            status, out, err = run_tool(['send', srv.url(), '--secret',
                                         SECRET, *args], env=env)
            self.assertEqual(status, rc, out + err)
            return srv.requests, out, err

    def test_body_is_newtonsoft_indented_crlf(self):
        reqs, _, _ = self.send('--id', ID, '--action', 'a1', '--data',
                               '{"Course":{"Title":"Caf\u00e9","Tags":[]},'
                               '"N":1.50}', '--properties',
                               '{"p1":"pv1"}')
        expected = w.delivery(id=ID, notifications=[
            {'Action': 'a1', 'Course': {'Title': 'Caf\u00e9', 'Tags': []},
             'N': 1.5}], properties={'p1': 'pv1'})
        # json.dumps writes 1.5; the sender keeps the number's text
        expected = expected.replace(b'"N": 1.5', b'"N": 1.50')
        self.assertEqual(reqs[0].body, expected)
        self.assertEqual(list(body_json(reqs[0])),
                         ['Id', 'Attempt', 'Properties', 'Notifications'])

    def test_empty_properties_and_lf_line_ends(self):
        reqs, _, _ = self.send('--id', ID, '--action', 'a1',
                               '--line-ends', 'lf')
        self.assertEqual(reqs[0].body, w.delivery(id=ID, crlf=False))
        self.assertIn(b'"Properties": {}', reqs[0].body)

    def test_compact_is_one_line(self):
        reqs, _, _ = self.send('--id', ID, '--action', 'a1', '--compact',
                               '--properties', '{"p1": "pv1"}')
        self.assertEqual(reqs[0].body,
                         b'{"Id":"%s","Attempt":1,"Properties":{"p1":"pv1"},'
                         b'"Notifications":[{"Action":"a1"}]}'
                         % ID.encode())

    def test_headers_as_the_sender_writes_them(self):
        reqs, _, _ = self.send('--action', 'a1', '--header',
                               'X-Tenant: contoso', '-H', 'X-Two:  2 ')
        r = reqs[0]
        self.assertEqual(r.method, 'POST')
        self.assertEqual(r.target, w.WEBHOOK)
        self.assertEqual(r.version, 'HTTP/1.1')
        names = [k for k, _ in r.headers]
        self.assertEqual(names, ['ms-signature', 'X-Tenant', 'X-Two',
                                 'Content-Type', 'Host', 'Content-Length'])
        self.assertEqual(r.header('Content-Type'), w.JSON_TYPE)
        self.assertEqual(r.header('ms-signature'), w.sign(SECRET, r.body))
        self.assertRegex(r.header('ms-signature'), r'^sha256=[0-9A-F]{64}$')
        self.assertRegex(r.header('Host'), r'^127\.0\.0\.1:\d+$')
        self.assertEqual(int(r.header('Content-Length')), len(r.body))
        self.assertEqual(r.header('X-Tenant'), 'contoso')
        self.assertEqual(r.header('X-Two'), '2')
        self.assertIsNone(r.header('User-Agent'))
        self.assertIsNone(r.header('Transfer-Encoding'))
        self.assertIsNone(r.header('Expect'))
        body = body_json(r)
        self.assertRegex(body['Id'], r'^[0-9a-f]{32}$')
        self.assertEqual(body['Attempt'], 1)
        self.assertEqual(body['Properties'], {})
        self.assertEqual(body['Notifications'], [{'Action': 'a1'}])

    def test_header_replacing_content_type_and_signature(self):
        reqs, _, _ = self.send('--action', 'a1', '-H',
                               'Content-Type: text/plain', '-H',
                               'ms-signature: sha256=00')
        r = reqs[0]
        self.assertEqual(r.header_all('Content-Type'), ['text/plain'])
        self.assertEqual(r.header_all('ms-signature'), ['sha256=00'])

    def test_notifications_in_order_with_sets(self):
        reqs, _, _ = self.send(
            '--sample', 'CourseCompleted', '--set', 'Course.Title=New "t"',
            '--set-json', 'Course.Published=false', '--set-json',
            'Extra={"a":[1,2]}', '--action', 'Custom', '--data', '{"K":"v"}',
            '--sample', 'CoursePublished')
        notes = body_json(reqs[0])['Notifications']
        self.assertEqual([n['Action'] for n in notes],
                         ['CourseCompleted', 'Custom', 'CoursePublished'])
        self.assertEqual(notes[0]['Course']['Title'], 'New "t"')
        self.assertIs(notes[0]['Course']['Published'], False)
        self.assertEqual(notes[0]['Extra'], {'a': [1, 2]})
        self.assertEqual(notes[1], {'Action': 'Custom', 'K': 'v'})
        self.assertEqual(list(notes[1]), ['Action', 'K'])

    def test_file_sent_byte_for_byte_and_resent_as_is(self):
        body = w.vector('v1')
        reqs, out, err = self.send(
            '--file', w.data_path('vectors', 'v1.body.bin'), '--attempts',
            '2', '--retry-delays', '10ms', script=[reply(500), reply(200)])
        self.assertEqual([r.body for r in reqs], [body, body])
        self.assertEqual(reqs[0].header('ms-signature'),
                         w.sign(SECRET, body))
        self.assertIn('same Id', err)

    def test_expect_continue(self):
        reqs, out, _ = self.send('--action', 'a1', '--expect-continue',
                                 '-v')
        self.assertEqual(reqs[0].header('Expect'), '100-continue')
        self.assertEqual(reqs[0].header('ms-signature'),
                         w.sign(SECRET, reqs[0].body))
        self.assertIn('< HTTP/1.1 100', out)

    def test_expect_continue_without_100_sends_the_body_anyway(self):
        with t.Scripted([reply(200)], continue_100=False) as srv:
            start = time.monotonic()
            rc, out, err = run_tool(['send', srv.url(), '--secret', SECRET,
                                     '--action', 'a1', '--expect-continue'])
            took = time.monotonic() - start
            self.assertEqual(rc, 0, out + err)
            self.assertEqual(body_json(srv.requests[0])['Attempt'], 1)
        # The wait, and not the 100 s timeout: slower programs (under
        # valgrind) only make it longer, never shorter.
        self.assertGreaterEqual(took, 0.35)
        self.assertLess(took, w.timing_bound(3))

    def test_verbose_prints_both_heads_not_the_secret(self):
        _, out, _ = self.send('--action', 'a1', '-v',
                              script=[reply(200, 'fine\r\nmore',
                                            [('X-Answer', 'yes')])])
        self.assertRegex(out, r'(?m)^> POST %s HTTP/1.1$' % w.WEBHOOK)
        self.assertRegex(out, r'(?m)^> ms-signature: sha256=[0-9A-F]{64}$')
        self.assertRegex(out, r'(?m)^< HTTP/1.1 200 OK$')
        self.assertRegex(out, r'(?m)^< X-Answer: yes$')
        self.assertRegex(out, r'(?m)^attempt 1: 200 OK in .*: fine \.\.\.$')


class Retries(unittest.TestCase):

    def test_500_500_200_same_id_attempts_and_delays(self):
        with t.Scripted([reply(500, 'boom'), reply(500, 'boom'),
                         reply(200)]) as srv:
            rc, out, err = run_tool(['send', srv.url(), '--secret', SECRET,
                                     '--action', 'a1', '--attempts', '3',
                                     '--retry-delays', '100ms,200ms'])
            reqs = srv.requests
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(len(reqs), 3, reqs)
        bodies = [body_json(r) for r in reqs]
        self.assertEqual(len({b['Id'] for b in bodies}), 1)
        self.assertEqual([b['Attempt'] for b in bodies], [1, 2, 3])
        for r in reqs:
            self.assertEqual(r.header('ms-signature'), w.sign(SECRET, r.body))
        self.assertEqual(len({r.header('ms-signature') for r in reqs}), 3)
        gaps = [b.at - a.at for a, b in zip(reqs, reqs[1:])]
        self.assertGreaterEqual(gaps[0], 0.095, gaps)
        self.assertGreaterEqual(gaps[1], 0.195, gaps)
        self.assertLess(gaps[0], w.timing_bound(0.6), gaps)
        self.assertLess(gaps[1], w.timing_bound(0.7), gaps)
        self.assertRegex(out, r'attempt 1: 500 Internal Server Error in '
                              r'.*: boom\n  retrying in 100 ms \(Attempt 2')
        self.assertIn('retrying in 200 ms (Attempt 3', out)
        self.assertIn('delivered: Id %s on attempt 3' % bodies[0]['Id'],
                      out)

    def test_last_delay_repeats(self):
        with t.Scripted([reply(503)]) as srv:
            rc, out, _ = run_tool(['send', srv.url(), '--secret', SECRET,
                                   '--action', 'a1', '--attempts', '4',
                                   '--retry-delays', '10ms,50ms'])
            self.assertEqual(len(srv.requests), 4)
        self.assertEqual(rc, 1)
        self.assertEqual(out.count('retrying in 50 ms'), 2)
        self.assertIn('not delivered', out)

    def test_410_stops_at_once(self):
        with t.Scripted([reply(410, 'gone')]) as srv:
            rc, out, _ = run_tool(['send', srv.url(), '--secret', SECRET,
                                   '--action', 'a1', '--attempts', '3',
                                   '--retry-delays', '10ms'])
            time.sleep(0.1)
            self.assertEqual(len(srv.requests), 1)
        self.assertEqual(rc, 1)
        self.assertIn('410 Gone', out)
        self.assertNotIn('retrying', out)

    def test_redirect_is_not_followed(self):
        with t.Scripted([reply(302, '', [('Location', '/elsewhere')])]) \
                as srv:
            rc, out, _ = run_tool(['send', srv.url(), '--secret', SECRET,
                                   '--action', 'a1'])
            self.assertEqual(len(srv.requests), 1)
        self.assertEqual(rc, 1)
        self.assertIn('302 Found', out)

    def test_timeout_reported_and_retried(self):
        with t.Scripted([t.HANG]) as srv:
            start = time.monotonic()
            rc, out, err = run_tool(['send', srv.url(), '--secret', SECRET,
                                     '--action', 'a1', '--timeout', '300ms',
                                     '--attempts', '2', '--retry-delays',
                                     '50ms'])
            took = time.monotonic() - start
            self.assertEqual(len(srv.requests), 2)
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.count('timeout: no answer from 127.0.0.1:%d '
                                   'within 300 ms' % srv.port), 2, out)
        self.assertGreaterEqual(took, 0.6)

    def test_closed_without_answer_retried(self):
        with t.Scripted([t.CLOSE, reply(200)]) as srv:
            rc, out, err = run_tool(['send', srv.url(), '--secret', SECRET,
                                     '--action', 'a1', '--attempts', '2',
                                     '--retry-delays', '10ms'])
        self.assertEqual(rc, 0, out + err)
        self.assertIn('closed the connection without answering', out)

    def test_connection_refused(self):
        port = t.closed_port()
        rc, out, err = run_tool(['send', 'http://127.0.0.1:%d/' % port,
                                 '--secret', SECRET, '--action', 'a1',
                                 '--attempts', '2', '--retry-delays', '10ms'])
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.count('connection refused by 127.0.0.1:%d'
                                   % port), 2, out)

    def test_dns_failure(self):
        rc, out, err = run_tool(['send', 'http://whr-test.invalid/',
                                 '--secret', SECRET, '--action', 'a1'])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("DNS: cannot resolve 'whr-test.invalid'", out)

    def test_count_with_concurrency_distinct_ids(self):
        with t.Scripted([reply(200)]) as srv:
            rc, out, err = run_tool(['send', srv.url(), '--secret', SECRET,
                                     '--action', 'a1', '--count', '20',
                                     '--concurrency', '4'])
            reqs = srv.requests
            max_active = srv.max_active
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(len(reqs), 20)
        self.assertEqual(len({body_json(r)['Id'] for r in reqs}), 20)
        self.assertLessEqual(max_active, 4)
        self.assertRegex(out, r'sent 20 deliveries in .*: 20 requests, '
                              r'[0-9.]+ requests/s')
        self.assertIn('delivered 20, failed 0\n', out)
        self.assertRegex(out, r'latency p50 [0-9.]+ m?s, p99 [0-9.]+ m?s')

    def test_count_summary_counts_failures_by_cause(self):
        with t.Scripted([reply(200), reply(500), reply(410), reply(200)]) \
                as srv:
            rc, out, err = run_tool(['send', srv.url(), '--secret', SECRET,
                                     '--action', 'a1', '--count', '4'])
            self.assertEqual(len(srv.requests), 4)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('delivered 2, failed 2 (status 500: 1, status 410: 1)',
                      out)
        self.assertEqual(len(re.findall(r'(?m)^delivery \d+ Id [0-9a-f]{32}'
                                        r', attempt 1: ', out)), 2, out)


class HTTPS(unittest.TestCase):

    def test_delivered_through_nginx(self):
        env = {'MS_WebHookReceiverSecret_Custom': SECRET}
        with w.Server(env=env) as srv, t.NginxTLS(srv.port) as tls:
            for host in ('localhost', '127.0.0.1'):
                with self.subTest(host=host):
                    rc, out, err = run_tool(['send', tls.url(host=host),
                                             '--secret', SECRET, '--cacert',
                                             tls.cacert, '--action', 'a1',
                                             '--expect-continue'])
                    self.assertEqual(rc, 0, out + err)
            rc, out, err = run_tool(['send', tls.url(), '--secret', SECRET,
                                     '--action', 'a1'])
            self.assertEqual(rc, 1, out + err)
            self.assertIn('certificate verify failed', out)


class Usage(unittest.TestCase):

    def usage(self, args, message, env=None):
        rc, out, err = run_tool(['send'] + args, env=env)
        self.assertEqual(rc, 2, out + err)
        self.assertIn(message, err)
        self.assertEqual(out, '')

    def test_usage_errors(self):
        u = 'http://127.0.0.1:9/'
        s = ['--secret', SECRET]
        self.usage([u, '--action', 'a1'], 'no secret')
        self.usage([u, *s], 'what to send?')
        self.usage(['--action', 'a1', *s], 'which URL?')
        self.usage([u, *s, '--nosuch'], "unknown option '--nosuch'")
        self.usage([u, *s, '--action'], '--action needs a value')
        self.usage([u, *s, '--action', 'a', '--data', '{"x":'],
                   '--data is not valid JSON')
        self.usage([u, *s, '--action', 'a', '--data', '[1]'],
                   '--data must be a JSON object')
        self.usage([u, *s, '--action', 'a', '--data', '{"Action":"b"}'],
                   'must not hold Action')
        self.usage([u, *s, '--data', '{}'], 'right after its --action')
        self.usage([u, *s, '--action', 'a', '--properties', 'x'],
                   '--properties is not valid JSON')
        self.usage([u, *s, '--sample', 'NoSuchAction'],
                   "no sample 'NoSuchAction'")
        self.usage([u, *s, '--set', 'A=b'], 'put it after --sample')
        self.usage([u, *s, '--action', 'a', '--set-json', 'A={'],
                   'not valid JSON')
        # A bad value: the message names the option.
        for option, value in (('--attempts', '0'), ('--retry-delays', '1x'),
                              ('--timeout', 'soon'), ('--line-ends', 'cr')):
            self.usage([u, *s, '--action', 'a', option, value], option)
        self.usage([u, *s, '--action', 'a', '-H', 'Content-Length: 1'],
                   'whr sets Content-Length itself')
        self.usage([u, *s, '--action', 'a', '-H', 'no colon'],
                   "--header wants 'Name: value'")
        self.usage([u, *s, '--file', w.data_path('vectors', 'v0.body.bin'),
                    '--action', 'a'], '--file sends the file as it is')
        self.usage(['ftp://x/', *s, '--action', 'a'], 'not an http')
        self.usage([u, '--action', 'a', '--secret-file', '/nonexistent'],
                   'cannot read the secret file /nonexistent')
        self.usage(['https://127.0.0.1:9/', *s, '--action', 'a',
                    '--cacert', '/nonexistent'], 'cannot read /nonexistent')

    def test_secret_sources_and_warnings(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'secret')
            with open(path, 'w') as f:
                f.write(SECRET + '\n')
            rc, out, err = run_tool(['send', 'http://127.0.0.1:9/x',
                                     '--secret-file', path, '--action',
                                     'a1', '--dry-run', '--id', ID])
            self.assertEqual(rc, 0, err)
            from_file = re.search(r'ms-signature: (\S+)', out).group(1)
            rc, out, err = run_tool(['send', 'http://127.0.0.1:9/x',
                                     '--action', 'a1', '--dry-run', '--id',
                                     ID], env={'WHR_SECRET': SECRET})
            self.assertEqual(rc, 0, err)
            from_env = re.search(r'ms-signature: (\S+)', out).group(1)
            body = out.encode('utf-8').partition(b'\r\n\r\n')[2]
            self.assertEqual(from_file, from_env)
            self.assertEqual(from_env, w.sign(SECRET, body))
        rc, out, err = run_tool(['send', 'http://127.0.0.1:9/x', '--secret',
                                 'short-secret-16c', '--action', 'a1',
                                 '--dry-run'])
        self.assertEqual(rc, 0, err)
        self.assertIn('warning: the secret has 16 characters', err)
        self.assertNotIn('short-secret-16c', out + err)

    def test_help(self):
        rc, out, err = run_tool(['send', '--help'])
        self.assertEqual(rc, 0, err)
        for option in ('--sample', '--action', '--data', '--set ',
                       '--set-json', '--file', '--id', '--properties',
                       '--compact', '--line-ends', '--attempts',
                       '--retry-delays', '--count', '--concurrency',
                       '--expect-continue', '--dry-run', '--secret ',
                       '--secret-file', '--header', '--timeout', '--cacert',
                       '--insecure', '--verbose', 'WHR_SECRET',
                       '--attempts 3', 'default 60,240', 'default 100s',
                       'Exit status: 0', '2 usage error'):
            self.assertIn(option, out)


if __name__ == '__main__':
    w.main()
