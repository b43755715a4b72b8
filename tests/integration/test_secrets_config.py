"""Secrets (PROTOCOL.md §3 "Secrets"), settings from flags and the
environment, start-up errors and the command line."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK  # noqa: E402

SA = w.secret('secret-A')
SB = w.secret('secret-B')
SC = w.secret('secret-C')
SX = w.secret('secret-X')
PREV = w.secret('previous-A')
MS = 'MS_WebHookReceiverSecret_Custom'


def status(port, secret, path=WEBHOOK, body=None):
    body = body if body is not None else w.delivery()
    return w.post(port, body, secret, path=path).status


class TempDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-secrets-')
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, data):
        path = os.path.join(self.tmp.name, name)
        with open(path, 'wb') as f:
            f.write(data if isinstance(data, bytes) else data.encode('utf-8'))
        return path


class SeveralIds(w.ServerTestCase):
    server_env = {MS: ' ,%s , tenant2 = %s,,\t, Tenant3==%s ,' % (SA, SB, SC)}

    def test_each_id_verifies_with_its_own_secret_only(self):
        port = self.srv.port
        table = [(WEBHOOK, SA), (WEBHOOK + '/tenant2', SB),
                 (WEBHOOK + '/tenant3', SC)]
        for path, good in table:
            for _, s in table:
                with self.subTest(path=path, secret=s[:9]):
                    self.assertEqual(status(port, s, path),
                                     200 if s == good else 400)

    def test_ids_are_case_insensitive(self):
        for path, s in [(WEBHOOK + '/TENANT2', SB),
                        (WEBHOOK + '/Tenant2/', SB),
                        (WEBHOOK + '/TENANT3', SC),
                        (WEBHOOK + '/tenant3', SC)]:
            with self.subTest(path=path):
                self.assertEqual(status(self.srv.port, s, path), 200)

    def test_unknown_id_is_404(self):
        for path in [WEBHOOK + '/tenant4', WEBHOOK + '/tenant',
                     WEBHOOK + '/tenant2%20', WEBHOOK + '/tenant2x']:
            with self.subTest(path=path):
                r = w.post(self.srv.port, w.delivery(), SA, path=path)
                self.assertEqual(r.status, 404, r)
                w.assert_error_body(self, r, [SA, SB, SC], w.delivery())

    def test_startup_log_counts_the_ids(self):
        self.assertIn('ready: 3 receiver id(s)', self.srv.log())


class SecretsFile(TempDir):
    def test_file_replaces_the_variable_and_the_log_warns(self):
        path = self.write('secrets', '%s\ntenant2=%s\n' % (SA, SB))
        with w.Server(['--secrets-file', path],
                      env={MS: '%s,tenant3=%s' % (SX, SC)}) as srv:
            self.assertEqual(status(srv.port, SA), 200)
            self.assertEqual(status(srv.port, SB, WEBHOOK + '/tenant2'), 200)
            self.assertEqual(status(srv.port, SX), 400)
            self.assertEqual(w.post(srv.port, w.delivery(), SC,
                                    path=WEBHOOK + '/tenant3').status, 404)
            self.assertRegex(srv.log(), r'(?m)^\S+ warn .*%s.*ignored' % MS)

    def test_crlf_and_blank_lines(self):
        path = self.write('secrets', b'\r\n  %s  \r\n\r\ntenant2 = %s\r\n'
                          % (SA.encode(), SB.encode()))
        with w.Server(['--secrets-file', path]) as srv:
            self.assertEqual(status(srv.port, SA), 200)
            self.assertEqual(status(srv.port, SB, WEBHOOK + '/tenant2'), 200)
            self.assertEqual(status(srv.port, SA + '\r'), 400)
            self.assertNotIn('ignored', srv.log())

    def test_commas_still_separate_in_a_file(self):
        path = self.write('secrets', '%s,tenant2=%s' % (SA, SB))
        with w.Server(['--secrets-file=' + path]) as srv:
            self.assertEqual(status(srv.port, SA), 200)
            self.assertEqual(status(srv.port, SB, WEBHOOK + '/tenant2'), 200)

    def test_file_from_the_environment(self):
        path = self.write('secrets', 'tenant2=%s\n' % SB)
        with w.Server(env={'WHR_SECRETS_FILE': path}) as srv:
            self.assertEqual(status(srv.port, SB, WEBHOOK + '/tenant2'), 200)
            self.assertEqual(w.post(srv.port, w.delivery(), SB).status, 404)

    def test_unreadable_file_is_a_startup_error(self):
        missing = os.path.join(self.tmp.name, 'missing')
        empty = self.write('empty', '\n \r\n')
        for args, env, needle in [
                (['--secrets-file', missing], {MS: SA}, missing),
                (['--secrets-file', self.tmp.name], {MS: SA}, self.tmp.name),
                (['--secrets-file', empty], {MS: SA}, empty),
                ([], {'WHR_SECRETS_FILE': missing}, missing)]:
            with self.subTest(args=args, env=env):
                rc, out, err = w.run_whr(['--listen', '127.0.0.1:0'] + args,
                                         env, program='serve')
                self.assertEqual(rc, 2, err)
                self.assertIn(needle, err)

    def test_file_without_read_permission(self):
        # Root reads any file: the server runs without that power then.
        path = self.write('secrets', SA)
        os.chmod(path, 0)
        rc, out, err = w.run_whr(['--listen', '127.0.0.1:0',
                                  '--secrets-file', path], program='serve',
                                 without_root_file_access=True)
        self.assertEqual(rc, 2, err)
        self.assertIn(path, err)
        self.assertIn('Permission denied', err)

    def test_bad_entry_in_a_file_is_named_with_the_file(self):
        path = self.write('secrets', '%s\ntenant2=%s\n' % (SA, SB[:31]))
        rc, out, err = w.run_whr(['--secrets-file', path], program='serve')
        self.assertEqual(rc, 2, err)
        self.assertIn(path, err)
        self.assertIn('entry 2', err)
        self.assertIn('tenant2', err)
        self.assertNotIn(SB[:31], err)


class PreviousSecrets(unittest.TestCase):
    def test_previous_secret_is_accepted_and_logged_as_such(self):
        env = {MS: '%s,tenant2=%s' % (SA, SB), 'WHR_PREVIOUS_SECRETS': PREV}
        with w.Server(env=env) as srv:
            mark = srv.mark()
            self.assertEqual(status(srv.port, PREV), 200)
            line = srv.request_line(mark)
            self.assertEqual(w.log_fields(line).get('secret'), 'previous',
                             line)

            mark = srv.mark()
            self.assertEqual(status(srv.port, SA), 200)
            line = srv.request_line(mark)
            self.assertNotIn('secret=', line)

            # Only for its own id.
            mark = srv.mark()
            self.assertEqual(status(srv.port, PREV, WEBHOOK + '/tenant2'),
                             400)
            self.assertNotIn('previous', srv.request_line(mark))

    def test_previous_secret_with_an_id(self):
        env = {MS: '%s,tenant2=%s' % (SA, SB),
               'WHR_PREVIOUS_SECRETS': 'TENANT2=' + PREV}
        with w.Server(env=env) as srv:
            self.assertEqual(status(srv.port, PREV, WEBHOOK + '/tenant2'),
                             200)
            self.assertEqual(status(srv.port, PREV), 400)

    def test_previous_secrets_file(self):
        with tempfile.TemporaryDirectory(prefix='whr-prev-') as tmp:
            path = os.path.join(tmp, 'previous')
            with open(path, 'w') as f:
                f.write('tenant2=%s\n' % PREV)
            env = {MS: '%s,tenant2=%s' % (SA, SB)}
            with w.Server(['--previous-secrets-file', path], env=env) as srv:
                mark = srv.mark()
                self.assertEqual(status(srv.port, PREV,
                                        WEBHOOK + '/tenant2'), 200)
                self.assertIn('secret=previous', srv.request_line(mark))
                self.assertEqual(status(srv.port, SB, WEBHOOK + '/tenant2'),
                                 200)

    def test_empty_previous_secrets_file_is_no_previous_secret(self):
        # The state between two rotations: whr register names the file
        # before it has a secret to put there.
        with tempfile.TemporaryDirectory(prefix='whr-prev-') as tmp:
            path = os.path.join(tmp, 'previous')
            current = os.path.join(tmp, 'secrets')
            open(path, 'w').close()
            with open(current, 'w') as f:
                f.write(SA + '\n')
            with w.Server(['--secrets-file', current,
                           '--previous-secrets-file', path]) as srv:
                self.assertEqual(status(srv.port, SA), 200)
                self.assertEqual(status(srv.port, PREV), 400)

    def test_previous_secret_without_a_current_one_is_a_startup_error(self):
        env = {MS: SA, 'WHR_PREVIOUS_SECRETS': 'tenant9=' + PREV}
        rc, out, err = w.run_whr(['--listen', '127.0.0.1:0'], env,
                                 program='serve')
        self.assertEqual(rc, 2, err)
        self.assertIn('WHR_PREVIOUS_SECRETS', err)
        self.assertIn('tenant9', err)
        self.assertNotIn(PREV, err)


class StartupErrors(unittest.TestCase):
    def assert_config_error(self, env, *needles, args=()):
        rc, out, err = w.run_whr(['--listen', '127.0.0.1:0', *args], env,
                                 program='serve')
        self.assertEqual(rc, 2, err)
        self.assertTrue(w.program_lines(err), 'no message')
        for n in needles:
            self.assertIn(n, err)
        for s in w.secrets_of(env, args):
            self.assertNotIn(s, err)
        self.assertNotIn('listening on', err)
        return err

    def assert_starts(self, env, secret=None, path=WEBHOOK):
        with w.Server(env=env) as srv:
            if secret is not None:
                self.assertEqual(status(srv.port, secret, path), 200)

    def test_secret_length_bounds(self):
        self.assert_starts({MS: 'a' + 'b' * 31}, 'a' + 'b' * 31)
        self.assert_starts({MS: 'c' + 'd' * 127}, 'c' + 'd' * 127)
        self.assert_config_error({MS: 'tenant2=' + 'e' * 31},
                                 'entry 1', 'tenant2', '31')
        self.assert_config_error({MS: '%s, tenant2=%s' % (SA, 'f' * 129)},
                                 'entry 2', 'tenant2', '129')
        self.assert_config_error({MS: '%s, %s' % (SA, 'g' * 31)},
                                 'entry 2', 'default')

    def test_secret_length_counts_code_points(self):
        # 32 code points in 64 bytes: accepted, and the key is its UTF-8.
        self.assert_starts({MS: '\u00e9' * 32}, '\u00e9' * 32)
        self.assert_config_error({MS: 'tenant2=' + '\u00e9' * 31},
                                 'entry 1', 'tenant2')
        self.assert_starts({MS: 't=' + '\U0001F600' * 32},
                           '\U0001F600' * 32, WEBHOOK + '/t')
        self.assert_config_error({MS: '\u00e9' * 129}, 'entry 1')

    def test_id_length_bound(self):
        # 256 bytes is the longest id a URL may carry: it is served, and
        # a longer one is refused at start, not left unreachable.
        longest = 'i' * 256
        self.assert_starts({MS: '%s, %s=%s' % (SA, longest, SB)}, SB,
                           WEBHOOK + '/' + longest.upper())
        self.assert_config_error({MS: '%s, %s=%s' % (SA, longest + 'i', SB)},
                                 'entry 2', '257 bytes', 'at most 256')

    def test_more_than_one_equals_sign(self):
        err = self.assert_config_error(
            {MS: '%s, tenant2=%s=%s' % (SA, SB, SC)}, 'entry 2', 'tenant2')
        self.assertNotIn(SB, err)
        self.assertNotIn(SC, err)
        self.assert_config_error({MS: 'a=b=c'}, 'entry 1')

    def test_duplicate_ids(self):
        self.assert_config_error({MS: 'tenant2=%s, tenant2=%s' % (SA, SB)},
                                 'entry 2', 'tenant2')
        self.assert_config_error({MS: 'Tenant2=%s, tENANT2=%s' % (SA, SB)},
                                 'entry 2')
        self.assert_config_error({MS: '%s, %s' % (SA, SB)}, 'entry 2')

    def test_no_secret_at_all(self):
        self.assert_config_error({}, MS)
        self.assert_config_error({MS: ''}, MS)
        self.assert_config_error({MS: ' , ,'}, MS)

    def test_entry_without_id_or_secret(self):
        self.assert_config_error({MS: '%s, = ,' % SA}, 'entry 2')

    def test_secrets_are_environment_only(self):
        for args in (['--secrets', SA], ['--secrets=' + SA],
                     ['--previous-secrets', PREV]):
            with self.subTest(args=args[0]):
                err = self.assert_config_error({MS: SB}, args=args)
                self.assertIn(args[0].split('=')[0], err)
                self.assertNotIn(SA, err)
                self.assertNotIn(PREV, err)

    def test_unknown_flag(self):
        self.assert_config_error({MS: SA}, '--nosuch', args=['--nosuch'])
        self.assert_config_error({MS: SA}, '--nosuch',
                                 args=['--nosuch=' + SB])
        self.assert_config_error({MS: SA}, 'stray', args=['stray'])

    def test_bad_values(self):
        cases = [
            ('--max-body', ['0', 'abc', '-1', '1.5MiB', '65MiB', '10XB', '']),
            ('--max-header-size', ['12', 'big']),
            ('--read-timeout', ['0', 'abc', '5x', '-1s', '25h', '']),
            ('--idle-timeout', ['soon']),
            ('--shutdown-timeout', ['1.5s']),
            ('--listen', ['nocolon', '127.0.0.1:99999', '127.0.0.1:',
                          ':8080', '::1:8080', '127.0.0.1:http', '']),
            ('--log-level', ['loud', '']),
            ('--log-format', ['xml']),
            ('--max-connections', ['0', 'many']),
        ]
        for flag, values in cases:
            for value in values:
                with self.subTest(flag=flag, value=value):
                    self.assert_config_error({MS: SA}, flag,
                                             args=[flag, value])
            with self.subTest(flag=flag, value=values[0], form='='):
                self.assert_config_error({MS: SA}, flag,
                                         args=[flag + '=' + values[0]])
        with self.subTest('value missing'):
            self.assert_config_error({MS: SA}, '--max-body',
                                     args=['--max-body'])

    def test_a_body_budget_too_small_for_the_largest_body(self):
        """One slow upload of the largest size must not hold the whole
        budget: it must hold twice --max-body and a small body more."""
        err = self.assert_config_error(
            {MS: SA}, '--max-body-memory is too small for --max-body',
            'give at least 33693696 bytes', args=['--max-body', '16MiB'])
        self.assertEqual(len(w.program_lines(err)), 1, err)
        with w.Server(env={MS: SA}, args=['--max-body', '16MiB',
                                          '--max-body-memory', '33MiB']):
            pass

    def test_bad_environment_values_name_the_variable(self):
        for var, value in [('WHR_MAX_BODY', 'huge'),
                           ('WHR_READ_TIMEOUT', 'soon'),
                           ('WHR_LISTEN', 'nocolon'),
                           ('WHR_LOG_LEVEL', 'loud')]:
            with self.subTest(var=var):
                self.assert_config_error({MS: SA, var: value}, var)


class EnvironmentSettings(unittest.TestCase):
    def test_whr_listen(self):
        with w.Server(env={MS: SA, 'WHR_LISTEN': '127.0.0.1:0'},
                      listen=None) as srv:
            self.assertEqual(len(srv.ports), 1)
            self.assertEqual(status(srv.port, SA), 200)
        with w.Server(env={MS: SA,
                           'WHR_LISTEN': '127.0.0.1:0, 127.0.0.1:0'},
                      listen=None) as srv:
            self.assertEqual(len(srv.ports), 2)

    def test_listen_flag_overrides_the_environment(self):
        with w.Server(env={MS: SA, 'WHR_LISTEN': '127.0.0.3:0'},
                      listen=['127.0.0.1:0']) as srv:
            self.assertEqual(srv.addresses, [('127.0.0.1', srv.port)])
            self.assertNotIn('127.0.0.3', srv.log())

    def test_whr_max_body(self):
        body = w.delivery(notifications=[{'Action': 'a1',
                                          'Pad': 'p' * 3000}])
        self.assertGreater(len(body), 3000)
        with w.Server(env={MS: SA, 'WHR_MAX_BODY': '2KiB'}) as srv:
            self.assertEqual(status(srv.port, SA, body=body), 413)
            self.assertEqual(status(srv.port, SA), 200)
        with w.Server(['--max-body', '4KiB'],
                      env={MS: SA, 'WHR_MAX_BODY': '2KiB'}) as srv:
            self.assertEqual(status(srv.port, SA, body=body), 200)

    def test_whr_log_format(self):
        with w.Server(env={MS: SA, 'WHR_LOG_FORMAT': 'json'}) as srv:
            self.assertEqual(status(srv.port, SA), 200)
            srv.wait_log(r'"msg":"request"')
        with w.Server(['--log-format', 'text'],
                      env={MS: SA, 'WHR_LOG_FORMAT': 'json'}) as srv:
            self.assertNotIn('"msg"', srv.log())

    def test_developer_environment_does_not_leak_in(self):
        # The harness itself: a variable of the test runner's own
        # environment never reaches the server.
        os.environ[MS] = SX
        try:
            with w.Server(env={MS: SA}) as srv:
                self.assertEqual(status(srv.port, SX), 400)
            rc, out, err = w.run_whr(['--listen', '127.0.0.1:0'], {},
                                     program='serve')
            self.assertEqual(rc, 2)
        finally:
            del os.environ[MS]


class CommandLine(unittest.TestCase):
    def test_version(self):
        rc, out, err = w.run_whr(['--version'])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^whr \d+\.\d+\.\d+\n$')
        rc, out2, err = w.run_whr(['serve', '--version'])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out2, out)

    def test_help(self):
        rc, out, err = w.run_whr(['--help'])
        self.assertEqual(rc, 0, err)
        self.assertIn('serve', out)
        rc, out, err = w.run_whr(['serve', '--help'])
        self.assertEqual(rc, 0, err)
        for flag in ['--listen', '--max-body', '--read-timeout',
                     '--idle-timeout', '--shutdown-timeout',
                     '--max-connections', '--secrets-file', '--log-level',
                     '--log-format', MS, '--header-timeout',
                     '--write-timeout', '--min-body-rate',
                     '--max-body-memory', '--max-connections-per-client',
                     '--trusted-proxy', 'WHR_TRUSTED_PROXY']:
            self.assertIn(flag, out)

    def test_help_wins_over_a_bad_configuration(self):
        rc, out, err = w.run_whr(['serve', '--max-body', 'abc', '--help'])
        self.assertEqual(rc, 0, err)
        self.assertIn('--max-body', out)

    def test_usage_errors(self):
        rc, out, err = w.run_whr([])
        self.assertEqual(rc, 2)
        self.assertIn('serve', err)
        rc, out, err = w.run_whr(['nosuch'])
        self.assertEqual(rc, 2)
        self.assertIn('nosuch', err)


if __name__ == '__main__':
    w.main()
