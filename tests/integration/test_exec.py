"""The exec handler, `whr serve --handler exec:ACTION=COMMAND`: a command
per notification, its JSON on standard input, the outcome from its exit
status. The commands are tests/integration/exec-commands/probe.py, which
records what it was given and then does what it is told."""

import glob
import json
import os
import shlex
import signal
import socket
import stat
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     'exec-commands', 'probe.py')
S_TENANT = w.secret('exec-tenant')
S_PREVIOUS = w.secret('exec-previous')
S_TOOL = w.secret('exec-tool')
ENV = {'MS_WebHookReceiverSecret_Custom':
       '%s, tenant=%s' % (V1_SECRET, S_TENANT)}
EVENT_VARS = ('WHR_ACTION', 'WHR_DELIVERY_ID', 'WHR_ATTEMPT',
              'WHR_RECEIVER_ID', 'WHR_NOTIFICATION_INDEX')


class Setup:
    """A data folder and a folder for the probe's records."""

    def __init__(self, test):
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-exec-')
        test.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, 'data')
        self.test = test

    def path(self, *parts):
        return os.path.join(self.tmp.name, *parts)

    def out(self, name='out'):
        """A fresh folder for records."""
        path = self.path(name)
        os.makedirs(path, exist_ok=True)
        return path

    def probe(self, out, *args):
        """The COMMAND that runs the probe."""
        return ' '.join(shlex.quote(a) for a in
                        ('python3', PROBE, out, *args))

    def args(self, *more):
        return ['--no-enrollments', '--data-dir', self.data, *more]

    def server(self, *more, env=None):
        return w.Server(self.args(*more), env=dict(ENV, **(env or {})))

    def query(self, sql, *args):
        return w.inbox_query(self.data, sql, *args)

    def inbox(self, *args):
        rc, out, err = w.run_whr(['inbox', '--data-dir', self.data, *args])
        self.test.assertEqual(rc, 0, out + err)
        return out

    def show(self, delivery):
        return json.loads(self.inbox('--format', 'json', 'show', delivery))

    def post_each(self, port, actions):
        """One delivery per Action, each with one notification: Ids 1, 2,
        ... in order (show('%032x' % n)), every one answered 200."""
        for i, action in enumerate(actions):
            body = w.delivery(id='%032x' % (i + 1),
                              notifications=[{'Action': action}])
            self.test.assertEqual(w.post(port, body, V1_SECRET).status, 200)

    def wait_states(self, timeout=10, **want):
        """Wait until the notifications' states are as given, e.g.
        wait_states(done=2, dead=1) (states not named: none)."""
        deadline = time.monotonic() + w.slow(timeout)
        while True:
            rows = dict(self.query('SELECT state, count(*) FROM '
                                   'notifications GROUP BY state'))
            if rows == {k: v for k, v in want.items() if v}:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError('states %r, expected %r, after %.1f s'
                                     % (rows, want, w.slow(timeout)))
            time.sleep(0.02)


def records(out, expect=None, timeout=10):
    """The probe's records in OUT, oldest first; with @expect, wait for
    that many, then a moment more to see an extra one."""
    def read():
        recs = []
        for path in glob.glob(os.path.join(out, '*.json')):
            with open(path) as f:
                recs.append(json.load(f))
        return sorted(recs, key=lambda r: r['start'])
    if expect is None:
        return read()
    deadline = time.monotonic() + w.slow(timeout)
    recs = read()
    while len(recs) < expect:
        if time.monotonic() > deadline:
            raise AssertionError('%d records in %s, expected %d'
                                 % (len(recs), out, expect))
        time.sleep(0.02)
        recs = read()
    time.sleep(0.1)
    return read()


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def children(pid):
    """The pids of @pid's children, zombies included."""
    found = []
    for path in glob.glob('/proc/%d/task/*/children' % pid):
        with open(path) as f:
            found += f.read().split()
    return found


def gone(pid):
    """Whether @pid has exited (a zombie nobody reaped counts)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ('Z', 'X')


def kill(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def outcome(shown, index=0):
    note = shown['notifications'][index]
    o, = note['outcomes']
    return note, o


class Done(unittest.TestCase):
    def test_input_environment_and_descriptors(self):
        s = Setup(self)
        out = s.out()
        # Quoting: words, quotes, escapes; nothing expanded, no shell.
        command = (s.probe(out, 'exit', '0') +
                   r''' 'a b' "c \"d\" \$HOME" e\ f '' '$HOME' * "a\zb"''')
        env = {'WHR_PREVIOUS_SECRETS': 'tenant=' + S_PREVIOUS,
               'WHR_SECRET': S_TOOL,
               'WHR_SECRET_CHAT_FILE': '/run/secrets/chat',
               'ms_webhookreceiversecret_other': S_TOOL + 'x',
               'WHR_ACTION': 'inherited, must be replaced',
               'KEEP_ME': 'kept'}
        bodies = [
            w.delivery(id='e1' * 16, notifications=[
                {'Action': 'CourseCompleted', 'Course': {'Id': 'c1'},
                 'Title': 'S\u00e9curit\u00e9 "quoted"'}]),
            w.delivery(id='e2' * 16, attempt=3, notifications=[
                {'Action': 'UserCreated', 'n': 0},
                {'Action': 'UserDeleted', 'n': 1}]),
            w.delivery(id=None, notifications=[{'Action': 'NoId'}]),
        ]
        with s.server('--handler', 'exec:*=' + command, env=env) as srv:
            self.assertEqual(w.post(srv.port, bodies[0], V1_SECRET).status,
                             200)
            s.wait_states(done=1)
            records(out, 1)
            base_fds = fd_count(srv.pid)
            self.assertEqual(w.post(srv.port, bodies[1], S_TENANT,
                                    path=WEBHOOK + '/TENANT').status, 200)
            self.assertEqual(w.post(srv.port, bodies[2], V1_SECRET).status,
                             200)
            s.wait_states(done=4)
            # Every child reaped, no descriptor left behind.
            self.assertEqual(children(srv.pid), [])
            w.wait_until('whr has %d descriptors again (%d now)'
                       % (base_fds, fd_count(srv.pid)),
                       lambda: fd_count(srv.pid) == base_fds)
            shown = s.show('e1' * 16)
        note, o = outcome(shown)
        self.assertEqual((note['state'], o['handler'], o['result']),
                         ('done', 'exec:*:1', 'done'))

        recs = records(out, 4)
        self.assertEqual(len(recs), 4)
        first, *_ = recs
        self.assertEqual(first['argv'], ['0', 'a b', 'c "d" $HOME', 'e f', '',
                                         '$HOME', '*', r'a\zb'])
        # Exactly the notification's bytes, as they were in the body.
        spans = [w.notification_spans(b) for b in bodies]
        (a, b), = spans[0]
        self.assertEqual(first['stdin'].encode('utf-8', 'surrogateescape'),
                         bodies[0][a:b])
        by_action = {json.loads(r['stdin'])['Action']: r for r in recs}
        for action, body, index in (('UserCreated', bodies[1], 0),
                                    ('UserDeleted', bodies[1], 1)):
            a, b = spans[1][index]
            self.assertEqual(by_action[action]['stdin'].encode(),
                             body[a:b])
        self.assertEqual(
            {a: tuple(r['env'][k] for k in EVENT_VARS)
             for a, r in by_action.items()},
            {'CourseCompleted': ('CourseCompleted', 'e1' * 16, '1', '', '0'),
             'UserCreated': ('UserCreated', 'e2' * 16, '3', 'tenant', '0'),
             'UserDeleted': ('UserDeleted', 'e2' * 16, '3', 'tenant', '1'),
             'NoId': ('NoId', '', '1', '', '0')})
        secrets = (V1_SECRET, S_TENANT, S_PREVIOUS, S_TOOL)
        for r in recs:
            env = r['env']
            self.assertEqual(env.get('KEEP_ME'), 'kept')
            self.assertIn('PATH', env)
            names = [k for k in env if 'SECRET' in k.upper()]
            self.assertEqual(names, [], 'secret variables in the '
                                        'environment')
            text = json.dumps(env)
            for secret in secrets:
                self.assertNotIn(secret, text)
            # Only standard input, output and error; output is
            # /dev/null, input and error pipes.
            self.assertEqual(sorted(r['fds']), ['0', '1', '2'], r['fds'])
            self.assertTrue(r['fds']['0'].startswith('pipe:'), r['fds'])
            self.assertEqual(r['fds']['1'], '/dev/null')
            self.assertTrue(r['fds']['2'].startswith('pipe:'), r['fds'])
            # A process group of its own.
            self.assertEqual(r['pgid'], r['pid'])

    def test_command_that_does_not_read_its_input(self):
        s = Setup(self)
        out = s.out()
        big = 'x' * (400 * 1024)   # more than a pipe holds
        with s.server('--handler', 'exec:Big=' + s.probe(out, 'noread'),
                      '--handler', 'exec:Big=python3 -c "import sys; '
                      'sys.exit(0)"') as srv:
            for i in range(3):
                body = w.delivery(notifications=[{'Action': 'Big', 'n': i,
                                                  'Data': big}])
                self.assertEqual(w.post(srv.port, body, V1_SECRET).status,
                                 200)
            s.wait_states(done=3)
            self.assertEqual(children(srv.pid), [])


    def test_command_exits_while_its_child_holds_the_pipes(self):
        # Done when the command exits, not when its pipes close.
        s = Setup(self)
        out = s.out()
        pidfile = s.path('orphan.pid')
        with s.server('--exec-timeout', '30', '--retry-delay', '1h',
                      '--handler', 'exec:*=' +
                      s.probe(out, 'orphan', pidfile)) as srv:
            body = w.delivery(notifications=[{'Action': 'a'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            w.wait_until('the orphan started', lambda: os.path.exists(pidfile))
            with open(pidfile) as f:
                orphan = int(f.read())
            self.addCleanup(kill, orphan)
            s.wait_states(done=1, timeout=20)
            self.assertFalse(gone(orphan))
            self.assertEqual(children(srv.pid), [])


class RetryAndReject(unittest.TestCase):
    def test_tempfail_retries_until_done(self):
        s = Setup(self)
        out = s.out()
        state = s.path('runs')
        command = s.probe(out, 'until', state, '2', '75', 'db is down\n')
        with s.server('--retry-delay', '20ms', '--handler',
                      'exec:CourseCompleted=' + command) as srv:
            mark = srv.mark()
            body = w.delivery(id='a7' * 16,
                              notifications=[{'Action': 'CourseCompleted'}])
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            line = srv.wait_log(r'(?m)^.*handler finished.*$', mark).group(0)
            s.wait_states(done=1)
            shown = s.show('a7' * 16)
        self.assertIn('result=retry', line)
        self.assertEqual(w.log_fields(line)['reason'],
                         'exit status 75 (temporary failure): db is down')
        note, o = outcome(shown)
        self.assertEqual((note['state'], o['result'], o['runs']),
                         ('done', 'done', 3))
        with open(state) as f:
            self.assertEqual(f.read(), '3')

    def test_failures_are_dead_and_replay_runs_again(self):
        s = Setup(self)
        out = s.out()
        state = s.path('runs')
        long_line = 'start-' + 'y' * 600 + '-the-end'
        handlers = {
            'Fail': s.probe(out, 'until', state, '1', '1',
                            'warming up\n  first problem  \n\n'
                            'second problem\r\n'),
            'Long': s.probe(out, 'exit', '3', 'early line\n' + long_line),
            'Quiet': s.probe(out, 'exit', '2'),
            'Segv': s.probe(out, 'signal', 'SIGSEGV'),
        }
        args = []
        for action, command in handlers.items():
            args += ['--handler', 'exec:%s=%s' % (action, command)]
        with s.server(*args) as srv:
            s.post_each(srv.port, handlers)
            s.wait_states(dead=4)
            reasons = {}
            for i, action in enumerate(handlers):
                note, o = outcome(s.show('%032x' % (i + 1)))
                self.assertEqual((note['state'], o['result']),
                                 ('dead', 'reject'))
                reasons[action] = o['reason']
            dead = json.loads(s.inbox('--format', 'json', 'list',
                                      '--state', 'dead'))
            self.assertIn('exec:Fail:1: exit status 1: ',
                          [d for d in dead if d['action'] == 'Fail'][0]
                          ['error'])
            srv.wait_log(r'result=reject reason="?killed by signal 11 '
                         r'\(SIGSEGV\)')
            # Replayed, the Fail command succeeds (its second run).
            out_text = s.inbox('replay', '%032x' % 1)
            self.assertIn('replayed 1 notification', out_text)
            s.wait_states(done=1, dead=3)
        self.assertEqual(reasons['Fail'], 'exit status 1: warming up | '
                                          'first problem | second problem')
        self.assertTrue(reasons['Long'].startswith('exit status 3: ...'),
                        reasons['Long'])
        self.assertTrue(reasons['Long'].endswith('y-the-end'))
        self.assertLessEqual(len(reasons['Long']), 220)
        self.assertNotIn('early line', reasons['Long'])
        self.assertEqual(reasons['Quiet'], 'exit status 2')
        self.assertEqual(reasons['Segv'], 'killed by signal 11 (SIGSEGV)')


class TooLarge(unittest.TestCase):
    def test_an_action_too_large_for_exec_is_rejected(self):
        # One environment value over 128 KiB (MAX_ARG_STRLEN) makes
        # exec(2) fail with E2BIG for this notification, and for every
        # retry of it: dead at once, with the reason; others still run.
        s = Setup(self)
        out = s.out()
        huge = 'A' * (200 * 1024)
        with s.server('--retry-delay', '1h', '--handler',
                      'exec:*=' + s.probe(out, 'exit', '0')) as srv:
            s.post_each(srv.port, [huge, 'Small'])
            s.wait_states(dead=1, done=1)
            note, o = outcome(s.show('%032x' % 1))
        self.assertEqual(o['result'], 'reject')
        if w.wrapped():
            return  # under valgrind the child fails exec, and exits 101
        self.assertRegex(o['reason'], r"^cannot run '.*python3?': the event "
                                      r"is too large for the command's "
                                      r"environment \(Argument list too "
                                      r"long\)$")


class Signals(unittest.TestCase):
    def test_killed_from_outside_is_retried(self):
        # systemctl stop or kill signals the whole service, commands
        # included, and the OOM killer sends SIGKILL: the command did
        # nothing wrong, so it runs again instead of going dead.
        s = Setup(self)
        out = s.out()
        handlers = {'Term': s.probe(out, 'signal', 'SIGTERM'),
                    'Kill': s.probe(out, 'signal', 'SIGKILL'),
                    'Hup': s.probe(out, 'signal', 'SIGHUP')}
        args = ['--retry-delay', '1h']
        for action, command in handlers.items():
            args += ['--handler', 'exec:%s=%s' % (action, command)]
        with s.server(*args) as srv:
            s.post_each(srv.port, handlers)
            s.wait_states(retrying=3)
            for i, (number, name) in enumerate([(15, 'SIGTERM'),
                                                (9, 'SIGKILL'),
                                                (1, 'SIGHUP')]):
                note, o = outcome(s.show('%032x' % (i + 1)))
                self.assertEqual((note['state'], o['result'], o['reason']),
                                 ('retrying', 'retry',
                                  'killed by signal %d (%s), sent from '
                                  'outside' % (number, name)))


class TimeLimit(unittest.TestCase):
    def test_timeout_kills_the_command_and_what_it_started(self):
        s = Setup(self)
        out = s.out()
        pids = {'Hang': s.path('hang.pids'), 'Stubborn': s.path('st.pids')}
        with s.server('--exec-timeout', '1', '--retry-delay', '1h',
                      '--handler', 'exec:Hang=' +
                      s.probe(out, 'hang', pids['Hang']),
                      '--handler', 'exec:Stubborn=' +
                      s.probe(out, 'hang', pids['Stubborn'], 'noterm')) as srv:
            start = time.monotonic()
            s.post_each(srv.port, pids)
            running = {}
            for action, path in pids.items():
                w.wait_until('%s started' % action,
                           lambda: os.path.exists(path))
                with open(path) as f:
                    running[action] = [int(p) for p in f.read().split()]
            s.wait_states(retrying=2, timeout=15)
            elapsed = time.monotonic() - start
            for action, procs in running.items():
                for pid in procs:
                    w.wait_until('%s process %d gone' % (action, pid),
                               lambda: gone(pid))
            self.assertEqual(children(srv.pid), [])
            shown = {action: outcome(s.show('%032x' % (i + 1)))
                     for i, action in enumerate(pids)}
        for action, (note, o) in shown.items():
            self.assertEqual((note['state'], o['result']),
                             ('retrying', 'retry'))
            self.assertEqual(o['reason'], 'timed out after 1 s '
                                          '(exec-timeout): hanging now')
        # The stubborn one ignored SIGTERM: SIGKILL 2 s later.
        self.assertGreaterEqual(elapsed, 3.0)
        self.assertLess(elapsed, w.timing_bound(8.0))

    def test_a_command_may_clean_up_after_sigterm(self):
        # The grace between SIGTERM and SIGKILL is for cleaning up: the
        # command's standard error stays open and read through it, so
        # saying so there neither fails nor kills it (SIGPIPE), and it
        # ends up in the reason.
        s = Setup(self)
        out = s.out()
        marker = s.path('cleaned')
        # Time for the probe to set up its SIGTERM handler, also on a
        # machine busy with valgrind runs.
        timeout = 10 if w.wrapped() else 2
        with s.server('--exec-timeout', str(timeout), '--retry-delay', '1h',
                      '--handler', 'exec:Clean=' +
                      s.probe(out, 'cleanup', marker)) as srv:
            s.post_each(srv.port, ['Clean'])
            s.wait_states(retrying=1, timeout=15)
            note, o = outcome(s.show('%032x' % 1))
        self.assertTrue(os.path.exists(marker), 'the cleanup did not run')
        self.assertEqual(o['reason'], 'timed out after %d s (exec-timeout): '
                                      'cleaning up' % timeout)

    def test_a_failed_start_stops_the_commands_it_began(self):
        # whr serve cannot listen (its port is taken) after its inbox has
        # begun a notification left from the last run: the command stops
        # with whr, within the shutdown timeout, instead of outliving it.
        s = Setup(self)
        out = s.out()
        pids = s.path('hang.pids')
        handler = 'exec:Hang=' + s.probe(out, 'hang', pids)
        with s.server('--shutdown-timeout', '2s', '--retry-delay', '10ms',
                      '--handler', handler) as srv:
            s.post_each(srv.port, ['Hang'])
            w.wait_until('Hang started', lambda: os.path.exists(pids))
        os.unlink(pids)
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(('127.0.0.1', 0))
        busy.listen(1)
        rc, _, err = w.run_whr(['serve', *s.args(
            '--listen', '127.0.0.1:%d' % busy.getsockname()[1],
            '--shutdown-timeout', '2s', '--handler', handler)], ENV,
            timeout=60)
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r'(?i)in use')
        # Whether the command had started or not (the stop may come
        # first), none of it outlives whr: without the stop it would.
        def left():
            found = []
            for entry in os.listdir('/proc'):
                try:
                    with open('/proc/%s/cmdline' % entry, 'rb') as f:
                        if pids.encode() in f.read():
                            found.append(int(entry))
                except (OSError, ValueError):
                    pass
            return found
        w.wait_until('no command left', lambda: left() == [])
        if os.path.exists(pids):
            with open(pids) as f:
                for pid in [int(p) for p in f.read().split()]:
                    w.wait_until('process %d gone' % pid, lambda: gone(pid))

    def test_stop_cuts_running_commands_short(self):
        # whr stops while two commands hang (one ignores SIGTERM): they are
        # stopped within the shutdown timeout, with their group, and
        # retried at the next start; whr exits 0, leaving nothing behind.
        s = Setup(self)
        out = s.out()
        pids = {'Hang': s.path('hang.pids'), 'Stubborn': s.path('st.pids')}
        timeout = max(3, w.slow(3))
        srv = s.server('--shutdown-timeout', '%ds' % timeout,
                       '--workers', '2', '--retry-delay', '1h',
                       '--handler', 'exec:Hang=' +
                       s.probe(out, 'hang', pids['Hang']),
                       '--handler', 'exec:Stubborn=' +
                       s.probe(out, 'hang', pids['Stubborn'], 'noterm'))
        with srv:
            s.post_each(srv.port, pids)
            running = []
            for action, path in pids.items():
                w.wait_until('%s started' % action,
                           lambda: os.path.exists(path))
                with open(path) as f:
                    running += [int(p) for p in f.read().split()]
            start = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            self.assertEqual(srv.wait_exit(w.slow(30)), 0, srv.log())
            took = time.monotonic() - start
            log = srv.check_exit(0)
        self.assertLess(took, w.timing_bound(timeout + 1), log)
        self.assertNotIn('still running', log)
        for pid in running:
            self.assertTrue(gone(pid), 'process %d outlived whr' % pid)
        for i, action in enumerate(pids):
            note, o = outcome(s.show('%032x' % (i + 1)))
            self.assertEqual((note['state'], o['result']),
                             ('retrying', 'retry'), action)
            self.assertRegex(o['reason'], r'^stopped after [0-9.]+ s: whr '
                             r'is stopping: hanging now$')

    def test_max_running(self):
        # With 1, never two at once; with 4 (the control), some overlap,
        # so the check can fail.
        for max_running, overlap in ((1, False), (4, True)):
            with self.subTest(max_running=max_running):
                s = Setup(self)
                out = s.out()
                with s.server('--workers', '4', '--exec-max-running',
                              str(max_running), '--handler',
                              'exec:CourseCompleted=' +
                              s.probe(out, 'span', '0.3')) as srv:
                    for i in range(4):
                        # Other learners: the inbox runs them at once.
                        body = w.delivery(notifications=[{
                            'Action': 'CourseCompleted',
                            'Course': {'Id': 'c'},
                            'Users': [{'Id': 'u%d' % i}]}])
                        self.assertEqual(w.post(srv.port, body, V1_SECRET)
                                         .status, 200)
                    s.wait_states(done=4, timeout=15)
                spans = sorted((r['start'], r['end'])
                               for r in records(out, 4))
                self.assertEqual(len(spans), 4)
                overlaps = any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
                self.assertEqual(overlaps, overlap, spans)


class StartupErrors(unittest.TestCase):
    def refused(self, *args):
        return w.serve_refused('--no-enrollments', *args, env=ENV)

    def test_program_not_found(self):
        err = self.refused('--handler', 'exec:*=nope-no-such-program -v')
        self.assertIn("handler exec: cannot run 'nope-no-such-program': "
                      'No such file or directory', err)

    def test_program_not_executable(self):
        with tempfile.TemporaryDirectory(prefix='whr-exec-') as tmp:
            script = os.path.join(tmp, 'script.sh')
            with open(script, 'w') as f:
                f.write('#!/bin/sh\nexit 0\n')
            os.chmod(script, 0o644)
            for program, why in ((script, 'Permission denied'),
                                 (tmp, 'Is a directory'),
                                 (os.path.join(tmp, 'none'),
                                  'No such file or directory')):
                with self.subTest(program=program):
                    err = self.refused('--handler', 'exec:*=' + program)
                    self.assertIn("handler exec: cannot run '%s': %s"
                                  % (program, why), err)

    def test_bad_specs(self):
        cases = [
            ('exec', "missing '=' in 'exec:'"),
            ('exec:CourseCompleted',
             "missing '=' in 'exec:CourseCompleted'"),
            ('exec:=true', "empty ACTION in 'exec:=true'"),
            ('exec:  =true', 'empty ACTION'),
            ('exec:X=', "empty COMMAND in 'exec:X='"),
            ('exec:X= \t ', 'empty COMMAND'),
            ("exec:X=echo 'abc", 'unterminated single quote in COMMAND'),
            ('exec:X=echo "abc\\"', 'unterminated double quote in COMMAND'),
            ('exec:X=echo abc\\', 'a lone backslash at the end in COMMAND'),
        ]
        for spec, message in cases:
            with self.subTest(spec=spec):
                err = self.refused('--handler', spec)
                self.assertIn('handler exec: ' + message, err)

    def test_bad_settings(self):
        cases = [
            (('--exec-max-running', '0'), '--exec-max-running needs a count'),
            (('--exec-max-running', 'four'), '--exec-max-running needs'),
            (('--exec-max-running=-1',), '--exec-max-running needs'),
            (('--exec-timeout', '0'), '--exec-timeout needs seconds'),
            (('--exec-timeout', 'soon'), '--exec-timeout needs seconds'),
            (('--exec-timeout',), '--exec-timeout needs seconds'),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                err = self.refused('--handler', 'exec:*=true', *args)
                self.assertIn(message, err)

    def test_count_forms_taken(self):
        # --exec-max-running has always taken what strtoul() reads ("+4",
        # " 4"): the count passes, and start-up goes on to the next
        # check (no secret here).
        with tempfile.TemporaryDirectory(prefix='whr-exec-') as tmp:
            for count in ('4', '+4', ' 4', '0004'):
                with self.subTest(count=count):
                    err = w.serve_refused(
                        '--no-enrollments', '--data-dir', tmp,
                        '--handler', 'exec:*=true',
                        '--exec-max-running', count, env={})
                    self.assertNotIn('--exec-max-running', err)
                    self.assertIn('no receiver secret is configured', err)


class SpawnFailure(unittest.TestCase):
    def test_program_gone_at_run_time_is_retried(self):
        s = Setup(self)
        scripts = {'Gone': s.path('gone.sh'), 'Locked': s.path('locked.sh')}
        args = []
        for action, script in scripts.items():
            with open(script, 'w') as f:
                f.write('#!/bin/sh\nexit 0\n')
            os.chmod(script, stat.S_IRWXU)
            args += ['--handler', 'exec:%s=%s' % (action, script)]
        with s.server('--retry-delay', '1h', *args) as srv:
            os.unlink(scripts['Gone'])
            os.chmod(scripts['Locked'], stat.S_IRUSR | stat.S_IWUSR)
            s.post_each(srv.port, scripts)
            s.wait_states(retrying=2)
            reasons = [outcome(s.show('%032x' % (i + 1)))[1]['reason']
                       for i in range(2)]
        self.assertEqual(reasons, [
            "cannot run '%s': No such file or directory" % scripts['Gone'],
            "cannot run '%s': Permission denied" % scripts['Locked']])


if __name__ == '__main__':
    w.main()
