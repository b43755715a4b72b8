"""whr register (issue 16): subscribing to Learn365 events from the
command line, through a stand-in of the registrations API (learn365.py),
against whr serve and against scripted receivers.

Against whr serve, whr register relies on whr serve reading its secrets
files again by itself when they change (no SIGHUP is sent).
"""

import json
import os
import re
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
import toolstest as t  # noqa: E402
import learn365  # noqa: E402
from toolstest import reply, echo  # noqa: E402

OLD = w.secret('register-old-default')
T2 = w.secret('register-tenant-two')
STATIC = w.secret('register-static')
NEW_SECRET = re.compile(r'^[A-Za-z0-9_-]{48}$')

# ---- helpers -------------------------------------------------------------

class Files:
    """A secrets file and a previous-secrets file, as whr serve reads
    them: the default id's secret OLD and tenant t2's, no previous one."""

    def __init__(self, secrets=None, previous=''):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-register-')
        self.secrets = os.path.join(self.tmp.name, 'secrets')
        self.previous = os.path.join(self.tmp.name, 'previous-secrets')
        self.write(self.secrets, secrets if secrets is not None else
                   '%s ,\nt2 = %s\n' % (OLD, T2))
        self.write(self.previous, previous)

    @staticmethod
    def write(path, text, mode=0o600):
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)

    @property
    def args(self):
        return ['--secrets-file', self.secrets,
                '--previous-secrets-file', self.previous]

    @staticmethod
    def read(path):
        with open(path) as f:
            return f.read()

    @staticmethod
    def mode(path):
        return stat.S_IMODE(os.stat(path).st_mode)

    def snapshot(self):
        return {p: (self.read(p), self.mode(p), os.stat(p).st_uid)
                for p in (self.secrets, self.previous)}

    def leftovers(self):
        """Temporary files whr register left in the folder."""
        return [n for n in os.listdir(self.tmp.name)
                if n not in ('secrets', 'previous-secrets')]

    def cleanup(self):
        self.tmp.cleanup()


def register(api, *args, env=None, secrets=(), check=True, timeout=60):
    """Run `whr register ARGS --cacert CA` against @api; (status, out,
    err). With @check, fails when the API key, a secret of the secrets
    files or of a registration the API holds, or one of @secrets is in
    the output."""
    full_env = api.env(**(env or {}))
    status, out, err = w.run_whr(['register', *args, '--cacert', api.cacert],
                                 env=full_env, check_secrets=check,
                                 timeout=timeout)
    if check:
        known = {api.key, full_env.get('WHR_LEARN365_API_KEY') or api.key,
                 OLD, T2, STATIC}
        known |= {r['Secret'] for r in api.registrations.values()}
        known |= set(secrets)
        for text, what in ((out, 'standard output'),
                           (err, 'standard error')):
            w.assert_nothing_secret(text, known, what)
    return status, out, err


def only_registration(test, api):
    test.assertEqual(len(api.registrations), 1, api.registrations)
    return dict(next(iter(api.registrations.values())))


def delivery_json(req):
    return json.loads(req.body.decode('utf-8'))


# ---- the command line ----------------------------------------------------

class Usage(unittest.TestCase):

    KEY = {'WHR_LEARN365_API_KEY': 'usage-test-key-0123456789abcdef'}
    URL = 'http://127.0.0.1:9' + w.WEBHOOK

    def test_help_is_complete(self):
        status, out, err = w.run_whr(['register', '--help'])
        self.assertEqual(status, 0, err)
        for text in ('create URL', 'list', 'show ID', 'pause ID',
                     'resume ID', 'update ID', 'rotate ID', 'delete ID',
                     '--filter EVENT', '--description TEXT', '--paused',
                     '--api URL', 'https://api.365.systems',
                     '/webhooks/registrations', 'WHR_LEARN365_API',
                     'WHR_LEARN365_API_USER', 'WHR_LEARN365_API_KEY',
                     '--api-key-file', '--cacert', '--timeout',
                     '--format table|json', '--show-secret',
                     '--secrets-file', 'WHR_SECRETS_FILE',
                     'MS_WebHookReceiverSecret_Custom_FILE',
                     '--previous-secrets-file', 'WHR_PREVIOUS_SECRETS_FILE',
                     '--data-dir', '--receiver-id', '--wait', 'CourseCreated',
                     'UserDeleted', '48 characters', 'getrandom',
                     'Exit status: 0', '2 usage error'):
            self.assertIn(text, out)
        status, out, err = w.run_whr(['--help'])
        self.assertRegex(out, r'(?m)^  register ')

    def test_usage_errors(self):
        cases = (
            ([], 'which subcommand?'),
            (['frob'], "no subcommand 'frob'"),
            (['list', 'extra'], "'extra' is one argument too many"),
            (['list', '--api', 'http://127.0.0.1:9/'], 'HTTPS only'),
            (['create', 'hooks.example.com' + w.WEBHOOK],
             'the API takes an absolute http:// or https:// URL only'),
            (['create', w.WEBHOOK], 'absolute http:// or https://'),
            (['create', 'ftp://example.com' + w.WEBHOOK],
             'absolute http:// or https://'),
            (['create', self.URL, '--filter', 'CourseFinished'],
             '--filter CourseFinished: not an event the API takes'),
            (['list', '--filter', 'CourseStarted'],
             'list does not take --filter'),
            (['show', self.URL + '/x', '--paused'],
             'show does not take --paused'),
            (['show'], 'show: which ID'),
            (['show', 'a/b'], "'a/b' is not a registration id"),
            (['update', 'abc'], 'update: what?'),
            (['create', self.URL, '--format', 'csv'],
             "unknown format 'csv': use table or json"),
            (['create', 'http://127.0.0.1:9/hooks/learn365'],
             'cannot tell the receiver id'),
            (['create', self.URL + '/a%2Cb'],
             'cannot be written into whr\'s secrets'),
            (['list', '--api-key-file', '/nonexistent'],
             'cannot read the API key file /nonexistent'),
        )
        for args, message in cases:
            with self.subTest(args=args):
                status, out, err = w.run_whr(['register', *args],
                                             env=self.KEY)
                self.assertEqual(status, 2, out + err)
                self.assertIn(message, err)
                self.assertEqual(out, '')

    def test_no_api_key(self):
        status, out, err = w.run_whr(['register', 'list'])
        self.assertEqual(status, 2, out + err)
        self.assertIn('no API key: set WHR_LEARN365_API_KEY or give '
                      '--api-key-file FILE', err)


# ---- against scripted receivers (no reload needed) ------------------------

class WithScriptedReceiver(unittest.TestCase):
    """Receivers that accept any delivery: the files and the API calls
    are what is tested."""

    def setUp(self):
        self.api = learn365.RegistrationsAPI()
        self.files = Files()

    def tearDown(self):
        self.api.stop()
        self.files.cleanup()

    def test_create_writes_the_new_secret_where_whr_reads_it(self):
        with t.Scripted([reply(200), echo(), echo()]) as rx:
            status, out, err = register(
                self.api, 'create', rx.url(), *self.files.args,
                '--filter', 'courseenrollment', '--filter',
                'CourseCompleted', '--description', 'HR feed')
            reqs = rx.requests
        self.assertEqual(status, 0, out + err)
        reg = only_registration(self, self.api)
        new = reg['Secret']
        self.assertRegex(new, NEW_SECRET)
        self.assertEqual(reg['Filters'], ['CourseEnrollment',
                                          'CourseCompleted'])
        self.assertEqual((reg['WebHookUri'], reg['Description'],
                          reg['IsPaused']), (rx.url(), 'HR feed', False))
        # The default id's entry replaced where it was, t2's kept as it
        # was; the old secret kept as previous; both files 0600.
        self.assertEqual(self.files.read(self.files.secrets),
                         '%s ,\nt2 = %s\n' % (new, T2))
        self.assertEqual(self.files.read(self.files.previous), OLD + '\n')
        self.assertEqual(self.files.mode(self.files.secrets), 0o600)
        self.assertEqual(self.files.mode(self.files.previous), 0o600)
        self.assertEqual(self.files.leftovers(), [])
        # In this order: a delivery signed with the new secret (no
        # notification in it), our echo, the API's echo.
        self.assertEqual([r.method for r in reqs], ['POST', 'GET', 'GET'])
        self.assertEqual(reqs[0].target, w.WEBHOOK)
        self.assertEqual(reqs[0].header('ms-signature'),
                         w.sign(new, reqs[0].body))
        self.assertEqual(delivery_json(reqs[0])['Notifications'], [])
        self.assertEqual([c[0] for c in self.api.calls], ['GET', 'POST'])
        self.assertIn('registered: %s\n' % reg['Id'], out)
        self.assertRegex(out, r'(?m)^Secret +\(not shown')
        self.assertIn('the old one kept in %s' % self.files.previous, out)

    def test_create_for_an_id_appends_its_entry(self):
        with t.Scripted([reply(200), echo(), echo()]) as rx:
            url = rx.url(w.WEBHOOK + '/Tenant3')
            status, out, err = register(self.api, 'create', url,
                                        *self.files.args)
        self.assertEqual(status, 0, out + err)
        new = only_registration(self, self.api)['Secret']
        self.assertEqual(self.files.read(self.files.secrets),
                         '%s ,\nt2 = %s\ntenant3=%s\n'
                         % (OLD, T2, new))
        # nothing to keep as previous: the file is as it was
        self.assertEqual(self.files.read(self.files.previous), '')
        self.assertIn("receiver id 'tenant3'", out)

    def test_the_data_folders_files_by_default(self):
        # As scripts/run makes them: DATA_DIR/secrets and
        # DATA_DIR/previous-secrets, found without an option.
        with t.Scripted([reply(200), echo(), echo()]) as rx:
            status, out, err = register(
                self.api, 'create', rx.url(), '--filter', 'CourseCompleted',
                env={'WHR_DATA_DIR': self.files.tmp.name})
        self.assertEqual(status, 0, out + err)
        new = only_registration(self, self.api)['Secret']
        self.assertEqual(self.files.read(self.files.secrets),
                         '%s ,\nt2 = %s\n' % (new, T2))
        self.assertEqual(self.files.read(self.files.previous), OLD + '\n')

    def test_replicas_each_accept_the_new_secret_first(self):
        with t.Scripted([reply(200), echo(), echo()]) as rx, \
                t.Scripted([reply(200)]) as r1, \
                t.Scripted([reply(400, 'ms-signature does not match')]) \
                as r2:
            status, out, err = register(
                self.api, 'create', rx.url(), *self.files.args,
                '--replica', r1.url(), '--replica', r2.url(), '--wait',
                '1s')
            self.assertEqual(status, 1, out + err)
            self.assertIn('step 2 of 4 (waiting for whr to accept the new '
                          'secret) failed: %s did not accept' % r2.url(),
                          err)
            self.assertEqual(self.api.registrations, {})
            self.assertEqual(self.files.read(self.files.previous), '')
            r2.script = [reply(200)]
            status, out, err = register(
                self.api, 'create', rx.url(), *self.files.args,
                '--replica', r1.url(), '--replica', r2.url())
            self.assertEqual(status, 0, out + err)
            new = only_registration(self, self.api)['Secret']
            for replica in (r1, r2):
                last = replica.requests[-1]
                self.assertEqual(last.header('ms-signature'),
                                 w.sign(new, last.body))
                self.assertIn('whr: %s accepts the new secret'
                              % replica.url(), out)
        status, out, err = register(
            self.api, 'create', rx.url(), *self.files.args, '--replica',
            r1.url(w.WEBHOOK + '/other'))
        self.assertEqual(status, 2, out + err)
        self.assertIn('not the receiver id of URL', err)

    def test_echo_check_fails_files_restored_nothing_registered(self):
        os.chmod(self.files.secrets, 0o640)
        before = self.files.snapshot()
        with t.Scripted([reply(200), echo(lambda v: '"%s"' % v)]) as rx:
            status, out, err = register(self.api, 'create', rx.url(),
                                        *self.files.args)
        self.assertEqual(status, 1, out + err)
        self.assertIn('step 3 of 4 (the echo check) failed', err)
        # explained as whr probe explains it
        self.assertIn('echo: FAIL: the body is in quotes (a JSON string)',
                      err)
        self.assertIn('the secrets files are back as they were', err)
        self.assertEqual(self.files.snapshot(), before)
        self.assertEqual(self.files.leftovers(), [])
        self.assertEqual(self.api.registrations, {})
        self.assertNotIn('POST', [c[0] for c in self.api.calls])

    def test_api_400_shown_as_it_came_in_both_forms(self):
        # Our echo passes, the API's own fails: its 400 is the last step.
        reason = ('The HTTP request echo query parameter was not returned '
                  'as plain text in the response.')
        for form, prefix in (('current', 'Could not register WebHook due '
                              'to error: '), ('v1.2.2', '')):
            with self.subTest(form=form):
                self.api.message_form = form
                before = self.files.snapshot()
                script = [reply(200), echo(), echo(lambda v: v + '\n')]
                with t.Scripted(script) as rx:
                    status, out, err = register(self.api, 'create',
                                                rx.url(), *self.files.args)
                self.assertEqual(status, 1, out + err)
                self.assertIn('step 4 of 4 (the call to the API) failed: '
                              'the API refused POST of the registration '
                              '(400 Bad Request): ' + prefix + reason, err)
                self.assertIn('nothing was registered', err)
                self.assertEqual(self.files.snapshot(), before)
                self.assertEqual(self.api.registrations, {})

    def test_wrong_key(self):
        before = self.files.snapshot()
        with t.Scripted([reply(200), echo()]) as rx:
            status, out, err = register(
                self.api, 'create', rx.url(), *self.files.args,
                env={'WHR_LEARN365_API_KEY': 'a-wrong-key-0123456789'})
            self.assertEqual(rx.requests, [])
        self.assertEqual(status, 1, out + err)
        self.assertIn('the API refused the credentials (401 Unauthorized: '
                      'Authorization has been denied for this request.): '
                      'check the API key', err)
        self.assertEqual(self.files.snapshot(), before)
        self.assertEqual(self.api.registrations, {})
        status, out, err = register(
            self.api, 'list', env={'WHR_LEARN365_API_KEY': 'wrong-again-0'})
        self.assertEqual(status, 1, out + err)
        self.assertIn('check the API key', err)

    def test_key_from_a_file(self):
        path = os.path.join(self.files.tmp.name, 'key')
        with open(path, 'w') as f:
            f.write(self.api.key + '\n')
        status, out, err = register(self.api, 'list', '--api-key-file',
                                    path, env={'WHR_LEARN365_API_KEY': None})
        self.assertEqual(status, 0, out + err)
        self.assertIn('(no registrations)', out)

    def test_without_a_secrets_file_refused_unless_show_secret(self):
        with t.Scripted([echo()]) as rx:
            status, out, err = register(self.api, 'create', rx.url())
            self.assertEqual(rx.requests, [])
            self.assertEqual(status, 1, out + err)
            self.assertIn('no secrets file to write the new secret into',
                          err)
            self.assertEqual(self.api.registrations, {})
            # The operator places it: shown, and no wait for whr.
            status, out, err = register(self.api, 'create', rx.url(),
                                        '--show-secret', check=False)
            reqs = rx.requests
        self.assertEqual(status, 0, out + err)
        new = only_registration(self, self.api)['Secret']
        self.assertIn('secret: %s\n' % new, out)
        self.assertRegex(out, r'(?m)^Secret +%s$' % new)
        self.assertEqual([r.method for r in reqs], ['GET', 'GET'])

    def test_a_registered_url_is_not_registered_again(self):
        with t.Scripted([reply(200), echo()]) as rx:
            reg = self.api.add(rx.url(), w.secret('other'))
            status, out, err = register(self.api, 'create', rx.url(),
                                        *self.files.args)
            self.assertEqual(rx.requests, [])
        self.assertEqual(status, 1, out + err)
        self.assertIn('is registered already, as %s' % reg['Id'], err)

    def test_rotate_keeps_the_whole_registration(self):
        reg = self.api.add('', OLD, filters=['CourseStarted'],
                           description='d', headers={'X-Tenant': 'contoso'},
                           properties={'p': 'v'})
        with t.Scripted([reply(200), reply(200), reply(200), echo(),
                         echo()]) as rx:
            self.api.registrations[reg['Id']]['WebHookUri'] = rx.url()
            status, out, err = register(self.api, 'rotate', reg['Id'],
                                        *self.files.args)
            reqs = rx.requests
        self.assertEqual(status, 0, out + err)
        after = self.api.get(reg['Id'])
        new = after['Secret']
        self.assertRegex(new, NEW_SECRET)
        self.assertEqual({k: v for k, v in after.items() if k != 'Secret'},
                         {k: v for k, v in reg.items() if k != 'Secret'} |
                         {'WebHookUri': rx.url()})
        self.assertEqual(self.files.read(self.files.secrets),
                         '%s ,\nt2 = %s\n' % (new, T2))
        self.assertEqual(self.files.read(self.files.previous), OLD + '\n')
        # the old secret accepted before, the new one, the old one still
        # (as previous), the echo, then the API's echo for the PUT
        self.assertEqual([r.method for r in reqs],
                         ['POST', 'POST', 'POST', 'GET', 'GET'])
        self.assertEqual([r.header('ms-signature') for r in reqs[:3]],
                         [w.sign(s, r.body) for s, r in
                          zip((OLD, new, OLD), reqs)])
        self.assertEqual([c[0] for c in self.api.calls], ['GET', 'PUT'])
        self.assertIn('rotated: %s' % reg['Id'], out)


# ---- changes through the API ----------------------------------------------

class Changes(unittest.TestCase):
    """pause, resume, update, delete, list, show: whr serve answers the
    API's echo (a secret in its environment: no reload needed)."""

    @classmethod
    def setUpClass(cls):
        cls.files = Files(secrets=STATIC + '\n')
        cls.srv = w.Server(cls.files.args)
        cls.api = learn365.RegistrationsAPI()

    @classmethod
    def tearDownClass(cls):
        cls.api.stop()
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()
            cls.files.cleanup()

    def url(self):
        return 'http://127.0.0.1:%d%s' % (self.srv.port, w.WEBHOOK)

    def add(self, **kw):
        kw.setdefault('filters', ['CourseEnrollment'])
        return self.api.add(self.url(), kw.pop('secret', STATIC), **kw)

    def test_pause_update_resume_keep_the_secret(self):
        reg = self.add(description='d', headers={'X-Tenant': 'contoso'},
                       properties={'p': 'v'})
        status, out, err = register(self.api, 'pause', reg['Id'])
        self.assertEqual(status, 0, out + err)
        self.assertEqual(self.api.get(reg['Id']), reg | {'IsPaused': True})
        self.assertIn('IsPaused     true', out)
        self.assertIn('X-Tenant (values not shown)', out)
        self.assertNotIn('contoso', out)
        status, out, err = register(self.api, 'update', reg['Id'],
                                    '--filter', 'coursestarted', '--filter',
                                    'CourseCompleted', '--description',
                                    'new words')
        self.assertEqual(status, 0, out + err)
        self.assertEqual(self.api.get(reg['Id']), reg | {
            'IsPaused': True, 'Filters': ['CourseStarted', 'CourseCompleted'],
            'Description': 'new words'})
        status, out, err = register(self.api, 'resume', reg['Id'],
                                    '--format', 'json')
        self.assertEqual(status, 0, out + err)
        shown = json.loads(out)
        self.assertNotIn('Secret', shown)
        self.assertEqual(shown['Headers'], {'X-Tenant': 'contoso'})
        self.assertIs(shown['IsPaused'], False)
        self.assertEqual(self.api.get(reg['Id'])['Secret'], STATIC)
        # already active: no PUT
        calls = len(self.api.calls)
        status, out, err = register(self.api, 'resume', reg['Id'])
        self.assertEqual(status, 0, out + err)
        self.assertIn('is active already', out)
        self.assertEqual([c[0] for c in self.api.calls[calls:]], ['GET'])

    def test_a_secret_the_api_would_refuse_is_not_put_back(self):
        reg = self.add(secret='only-twenty-chars-xx')
        status, out, err = register(self.api, 'pause', reg['Id'],
                                    secrets=('only-twenty-chars-xx',))
        self.assertEqual(status, 1, out + err)
        self.assertIn('has a Secret the API refuses (it takes 32 to 64 '
                      'characters)', err)
        self.assertIn('whr register rotate %s' % reg['Id'], err)
        self.assertEqual(self.api.get(reg['Id']), reg)

    def test_put_refused_by_the_api_shown_as_it_came(self):
        reg = self.api.add('http://127.0.0.1:%d/hook' % t.closed_port(),
                           STATIC)
        status, out, err = register(self.api, 'pause', reg['Id'])
        self.assertEqual(status, 1, out + err)
        self.assertIn('the API refused PUT of registration %s (400 Bad '
                      'Request): Could not register WebHook due to error: '
                      'WebHook verification failed.' % reg['Id'], err)
        self.assertIn('nothing was changed', err)
        self.assertEqual(self.api.get(reg['Id']), reg)

    def test_the_stand_in_delivers_as_learn365(self):
        reg = self.add(properties={'tenant': 'contoso'})
        mark = self.srv.mark()
        self.assertEqual(self.api.deliver(reg['Id']), 200)
        self.assertIn('status=200', self.srv.request_line(mark))
        self.assertEqual(self.api.deliver(reg['Id'], secret=OLD), 400)

    def test_delete(self):
        reg = self.add()
        status, out, err = register(self.api, 'delete', reg['Id'])
        self.assertEqual(status, 0, out + err)
        self.assertIn('deleted: %s' % reg['Id'], out)
        self.assertIsNone(self.api.get(reg['Id']))
        for sub in ('show', 'delete', 'pause'):
            status, out, err = register(self.api, sub, reg['Id'])
            self.assertEqual(status, 1, out + err)
            self.assertIn('the API has no such registration (404', err)

    def test_list_and_show(self):
        reg = self.add(description='listed')
        status, out, err = register(self.api, 'list')
        self.assertEqual(status, 0, out + err)
        self.assertRegex(out, r'^ID +STATE +FILTERS +URI +DESCRIPTION\n')
        self.assertRegex(out, r'(?m)^%s +active +CourseEnrollment +%s +'
                         r'listed$' % (reg['Id'], re.escape(self.url())))
        status, out, err = register(self.api, 'list', '--format', 'json')
        self.assertEqual(status, 0, out + err)
        listed = {r['Id']: r for r in json.loads(out)}
        self.assertEqual(listed[reg['Id']],
                         {k: v for k, v in reg.items() if k != 'Secret'})
        status, out, err = register(self.api, 'show', reg['Id'])
        self.assertEqual(status, 0, out + err)
        self.assertIn('Description  listed\n', out)
        self.assertIn('Secret       (not shown; --show-secret shows it)',
                      out)
        # asked for
        status, out, err = register(self.api, 'show', reg['Id'],
                                    '--show-secret', '--format', 'json',
                                    check=False)
        self.assertEqual(json.loads(out)['Secret'], STATIC)


# ---- against whr serve -----------------------------------------------------

class NotReadByWhr(unittest.TestCase):
    """whr serve reads other secrets files than those whr register
    writes: the wait fails, the files are put back."""

    def test_wait_fails_files_restored(self):
        files = Files()
        others = Files()
        try:
            with w.Server(others.args) as srv, \
                    learn365.RegistrationsAPI() as api:
                before = files.snapshot()
                url = 'http://127.0.0.1:%d%s' % (srv.port, w.WEBHOOK)
                status, out, err = register(api, 'create', url, *files.args,
                                            '--wait', '1s')
                self.assertEqual(status, 1, out + err)
                self.assertIn('step 2 of 4 (waiting for whr to accept the '
                              'new secret) failed: %s did not accept a '
                              'delivery signed with the new secret within '
                              '1 s: FAIL: 400 Bad Request' % url, err)
                self.assertIn('is whr serve reading this secrets file?', err)
                self.assertEqual(files.snapshot(), before)
                self.assertEqual(api.registrations, {})
                self.assertEqual([c[0] for c in api.calls], ['GET'])
        finally:
            files.cleanup()
            others.cleanup()


class AgainstWhrServe(unittest.TestCase):
    """The whole flow with whr serve reading the files whr register
    writes, and Learn365 (the stand-in) delivering."""

    def setUp(self):
        self.files = Files()
        self.api = learn365.RegistrationsAPI()
        self.srv = w.Server(self.files.args)
        self.url = 'http://127.0.0.1:%d%s' % (self.srv.port, w.WEBHOOK)

    def tearDown(self):
        try:
            # Its log must hold none of the secrets that came and went.
            self.srv.secrets |= {OLD, T2} | {
                r['Secret'] for r in self.api.registrations.values()}
            self.srv.secrets |= set(getattr(self, 'secrets', ()))
            self.srv.stop()
        finally:
            self.srv.cleanup()
            self.api.stop()
            self.files.cleanup()

    def register(self, *args):
        return register(self.api, *args, *self.files.args)

    def test_create_then_a_delivery_from_learn365_accepted(self):
        status, out, err = self.register('create', self.url, '--filter',
                                         'CourseEnrollment')
        self.assertEqual(status, 0, out + err)
        reg = only_registration(self, self.api)
        self.assertIn('whr: %s accepts the new secret' % self.url, out)
        mark = self.srv.mark()
        self.assertEqual(self.api.deliver(reg['Id']), 200)
        self.assertIn('status=200', self.srv.request_line(mark))
        # the old default secret is accepted as previous, t2's as before
        self.assertEqual(self.api.deliver(reg['Id'], secret=OLD), 200)
        self.assertEqual(w.post(self.srv.port, w.delivery(), T2,
                                path=w.WEBHOOK + '/t2').status, 200)

    def test_rotate_old_and_new_accepted_right_after_the_put(self):
        status, out, err = self.register('create', self.url)
        self.assertEqual(status, 0, out + err)
        reg = only_registration(self, self.api)
        old = reg['Secret']
        self.secrets = [old]
        status, out, err = self.register('rotate', reg['Id'])
        self.assertEqual(status, 0, out + err)
        new = self.api.get(reg['Id'])['Secret']
        self.assertNotEqual(new, old)
        self.assertIn('whr: %s still accepts the old secret, as previous'
                      % self.url, out)
        self.assertEqual(self.api.deliver(reg['Id'], secret=old), 200)
        self.assertEqual(self.api.deliver(reg['Id']), 200)
        self.assertEqual(self.files.read(self.files.previous), old + '\n')


if __name__ == '__main__':
    w.main()
