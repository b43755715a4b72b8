"""The container image (issue 14, points 1 and 2): deploy/Containerfile
built with podman on base images made from Debian packages
(deploy/make-base-images), then run as customers run it: the secret as a
mounted file, data in a named volume, the port published on the host's
loopback. From the host, `whr probe` and `whr send` (the binary of this
build); inside, `whr enrollments` and `whr inbox` (podman exec); `podman
healthcheck run`; `podman stop` (graceful: the log says so, the exit is
clean); a new container on the same volume finds every delivery. Then
everything the test made is removed: containers, volume, images and its
scratch podman storage. The base tarballs stay in WHR_BASE_CACHE (default
/var/tmp/whr-base-cache) for the next run.

Needs root, podman, runc and debootstrap (scripts/install-deps --test);
without them it skips, except under CI=true, where that is a failure.
podman runs with deploy/podman/*.conf (runc, both ulimits, a scratch
storage of its own): never with the machine's own storage.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402

SECRET = '0123456789abcdef0123456789abcdef-container'
SECRET2 = 'tenant2-secret-0123456789abcdef-container'
UID = 10001     # the image's user
CI = os.environ.get('CI') == 'true'
SAMPLES = ('CourseEnrollment', 'CourseStarted', 'CourseCompleted',
           'CoursePublished', 'CourseUnenrollment', 'CourseUnpublished',
           'EnrollmentApprovalRequest')


def source_root():
    root = os.environ.get('WHR_SOURCE_ROOT')
    if not root:
        raise RuntimeError('WHR_SOURCE_ROOT is not set (run through meson '
                           'test)')
    return root


def missing():
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return 'needs root (podman with runc, debootstrap)'
    for prog in ('podman', 'runc', 'debootstrap'):
        if shutil.which(prog) is None:
            return '%s is not installed (scripts/install-deps --test)' % prog
    return None


def log_step(text):
    sys.stderr.write('[container] %s\n' % text)
    sys.stderr.flush()


class Podman:
    """podman with the project's configuration and a scratch storage."""

    def __init__(self):
        # Short: podman keeps sockets under it (108 bytes at most).
        self.scratch = tempfile.mkdtemp(prefix='whrp-', dir='/var/tmp')
        conf_dir = os.path.join(source_root(), 'deploy', 'podman')
        self.env = dict(os.environ)
        for name, var in (('containers.conf', 'CONTAINERS_CONF'),
                          ('storage.conf', 'CONTAINERS_STORAGE_CONF')):
            with open(os.path.join(conf_dir, name)) as f:
                text = f.read()
            path = os.path.join(self.scratch, name)
            with open(path, 'w') as f:
                f.write(text.replace('@SCRATCH@', self.scratch))
            self.env[var] = path
        os.makedirs(os.path.join(self.scratch, 'tmp'))
        self.env['TMPDIR'] = os.path.join(self.scratch, 'tmp')

    def run(self, *args, check=True, timeout=120, input=None):
        """podman ARGS; returns (status, stdout, stderr)."""
        p = subprocess.run(['podman', *args], env=self.env,
                           input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        out = p.stdout.decode('utf-8', 'replace')
        err = p.stderr.decode('utf-8', 'replace')
        if check and p.returncode != 0:
            raise AssertionError('podman %s: exit %d\n%s%s'
                                 % (' '.join(args), p.returncode, out, err))
        return p.returncode, out, err

    def out(self, *args, **kw):
        return self.run(*args, **kw)[1]

    def destroy(self):
        """Remove the scratch storage (after the test removed what it
        made): podman's own reset first, so that nothing stays mounted."""
        self.run('system', 'reset', '--force', check=False, timeout=120)
        subprocess.run(['rm', '-rf', '--one-file-system', self.scratch],
                       check=False)


WHY_NOT = missing()


@unittest.skipIf(WHY_NOT is not None and not CI, WHY_NOT)
class Container(unittest.TestCase):

    pm = None

    @classmethod
    def setUpClass(cls):
        if WHY_NOT is not None:
            return      # CI=true: each test fails (setUp)
        cls.tag = 'whr-test-%d-%d' % (os.getpid(), int(time.time()))
        cls.image = 'localhost/%s:latest' % cls.tag
        cls.volume = cls.tag + '-data'
        cls.containers = []
        cls.pm = Podman()
        try:
            cls.make_bases()
            cls.build_image()
        except BaseException:
            cls.remove_all()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.pm is not None:
            cls.remove_all()

    def setUp(self):
        if WHY_NOT is not None:
            self.fail('CI=true and this machine cannot run the container '
                      'test: ' + WHY_NOT)

    @classmethod
    def make_bases(cls):
        env = dict(cls.pm.env)
        env.setdefault('WHR_BASE_CACHE', '/var/tmp/whr-base-cache')
        start = time.monotonic()
        p = subprocess.run([os.path.join(source_root(), 'deploy',
                                         'make-base-images'), '--import'],
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=900)
        err = p.stderr.decode('utf-8', 'replace')
        if p.returncode != 0:
            raise AssertionError('make-base-images failed (%d):\n%s'
                                 % (p.returncode, err))
        cls.bases = dict(re.findall(r'(?m)^(\w+_IMAGE)=(\S+)$',
                                    p.stdout.decode()))
        assert set(cls.bases) == {'BUILD_IMAGE', 'RUNTIME_IMAGE'}, p.stdout
        log_step('base images in %.0f s:\n  %s' % (
            time.monotonic() - start,
            '\n  '.join(re.findall(r'(?m)^make-base-images: (.*)$', err))))

    @classmethod
    def build_image(cls):
        start = time.monotonic()
        args = ['build', '--network=none', '--format', 'docker',
                '--layers=false', '-f', 'deploy/Containerfile',
                '-t', cls.image, '--build-arg', 'NINJA_JOBS=2']
        for k, v in sorted(cls.bases.items()):
            args += ['--build-arg', '%s=%s' % (k, v)]
        status, out, err = cls.pm.run(*args, source_root(), check=False,
                                      timeout=900)
        cls.built = status == 0
        if status != 0:
            raise AssertionError('podman build failed (%d):\n%s\n%s'
                                 % (status, out[-6000:], err[-4000:]))
        log_step('image built in %.0f s' % (time.monotonic() - start))

    @classmethod
    def remove_all(cls):
        """Everything the test made: its containers, its volume, the
        image, every layer of the build; then the scratch storage."""
        pm = cls.pm
        for name in cls.containers:
            pm.run('rm', '--force', '--time', '0', name, check=False)
        pm.run('volume', 'rm', '--force', cls.volume, check=False)
        pm.run('rmi', '--force', cls.image, check=False)
        pm.run('image', 'prune', '--force', check=False)
        left = pm.out('ps', '--all', '--quiet', check=False).split()
        pm.destroy()
        assert not left, 'containers left: %r' % left

    # -- helpers --

    def secret_file(self):
        """The secrets as a file the container's user may read, and no
        one else."""
        path = os.path.join(self.pm.scratch, 'secrets')
        with open(path, 'w') as f:
            f.write('%s\ntenant2=%s\n' % (SECRET, SECRET2))
        os.chown(path, UID, UID)
        os.chmod(path, 0o400)
        return path

    def plugin_folder(self):
        """A folder with the example plugin (handlers/examples/plugin),
        built on this machine (Debian 12, as the image) against this
        build's libwhr, as the container's plugin folder."""
        folder = os.path.join(self.pm.scratch, 'plugins')
        os.mkdir(folder)
        os.chmod(folder, 0o755)
        build = os.environ['WHR_BUILD_ROOT']
        subprocess.run(['cc', '-O2', '-fPIC', '-shared', '-pthread', '-o',
                        os.path.join(folder, 'completions.so'),
                        os.path.join(source_root(), 'handlers', 'examples',
                                     'plugin', 'completions.c'),
                        '-I', os.path.join(source_root(), 'include'),
                        '-I', os.path.join(build, 'include'),
                        '-L', os.path.join(build, 'receiver'), '-lwhr'],
                       check=True, timeout=60)
        return folder

    def start(self, name, port, *cmd, volumes=()):
        self.containers.append(name)
        extra = []
        for v in volumes:
            extra += ['--volume', v]
        self.pm.run('run', '--detach', '--name', name,
                    '--publish', '127.0.0.1:%d:8080' % port,
                    '--volume', '%s:/var/lib/whr' % self.volume,
                    '--volume', '%s:/run/secrets/whr:ro' % self.secret,
                    *extra, '--stop-timeout', '15', self.image, *cmd)
        self.wait_logs(name, r'whr \S+ ready:')
        # The published port answers once the network is set up.
        deadline = time.monotonic() + 20
        while True:
            try:
                r = w.get(port, w.WEBHOOK + '?echo=up')
                if r.status == 200:
                    return
            except (OSError, w.Closed):
                pass
            if time.monotonic() > deadline:
                raise AssertionError('port %d does not answer:\n%s'
                                     % (port, self.logs(name)))
            time.sleep(0.1)

    def logs(self, name):
        status, out, err = self.pm.run('logs', name, check=False)
        return out + err

    def wait_logs(self, name, pattern, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            text = self.logs(name)
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError('%s: never logged %r:\n%s'
                                     % (name, pattern, text))
            time.sleep(0.1)

    def exec_json(self, name, *args):
        return json.loads(self.pm.out('exec', name, *args))

    def state(self, name):
        return json.loads(self.pm.out('inspect', '--format',
                                      '{{json .State}}', name))

    def send(self, url, *args, secret=SECRET):
        status, out, err = w.run_whr(['send', url, *args],
                                     env={'WHR_SECRET': secret}, timeout=30)
        self.assertEqual(status, 0, out + err)
        return out

    def no_zombies(self, name):
        """Every process in the container, with its state: none is a
        zombie (tini reaps what exec handlers leave behind)."""
        out = self.pm.out('exec', name, '/bin/sh', '-c',
                          'cat /proc/[0-9]*/stat 2>/dev/null')
        procs = re.findall(r'^(\d+) \((.*?)\) (\S)', out, re.M)
        self.assertTrue(procs, out)
        zombies = [p for p in procs if p[2] == 'Z']
        self.assertEqual(zombies, [], out)
        return {int(pid): comm for pid, comm, _ in procs}

    # -- tests --

    def test_image(self):
        """What the image says about itself, and what is not in it."""
        info = json.loads(self.pm.out('image', 'inspect', self.image))[0]
        cfg = info['Config']
        self.assertEqual(cfg['User'], '%d:%d' % (UID, UID))
        self.assertEqual(cfg['Entrypoint'], ['/usr/bin/tini', '--',
                                             '/usr/bin/whr'])
        self.assertEqual(cfg['Cmd'], ['serve'])
        self.assertEqual(cfg.get('StopSignal'), 'SIGTERM')
        self.assertIn('8080/tcp', cfg['ExposedPorts'])
        self.assertIn('/var/lib/whr', cfg['Volumes'])
        env = dict(e.split('=', 1) for e in cfg['Env'])
        self.assertEqual(env['WHR_LISTEN'], '0.0.0.0:8080')
        self.assertEqual(env['WHR_DATA_DIR'], '/var/lib/whr')
        self.assertEqual(env['MS_WebHookReceiverSecret_Custom_FILE'],
                         '/run/secrets/whr')
        self.assertNotIn('WHR_SECRETS_FILE', env)
        # below the --stop-timeout the docs give (15 s) and podman's
        # default (10 s)
        self.assertEqual(env['WHR_SHUTDOWN_TIMEOUT'], '8s')
        # HEALTHCHECK survives only in Docker's format
        health = self.pm.out('image', 'inspect', '--format',
                             '{{json .HealthCheck}}', self.image)
        self.assertEqual(json.loads(health)['Test'],
                         ['CMD', '/usr/bin/whr', 'healthcheck'])
        # the runtime stage: whr and libwhr, no toolchain, no headers
        status, out, err = self.pm.run(
            'run', '--rm', '--entrypoint', '/bin/sh', self.image, '-c',
            'for f in /usr/bin/whr /usr/lib/libwhr.so.0 /usr/bin/tini '
            '/usr/bin/gcc /usr/bin/cc /usr/bin/meson /usr/include/whr '
            '/usr/lib/libwhr.a /usr/include/event2; do '
            '[ -e $f ] && echo "has $f"; done; whr --version; id -u',
            check=False)
        self.assertEqual(out.split('\n')[:3], ['has /usr/bin/whr',
                                               'has /usr/lib/libwhr.so.0',
                                               'has /usr/bin/tini'], out)
        self.assertNotIn('gcc', out)
        self.assertNotIn('include', out)
        self.assertRegex(out, r'(?m)^whr \d+\.\d+\.\d+\n%d\n$' % UID)

    def test_lifecycle(self):
        self.secret = self.secret_file()
        self.pm.run('volume', 'create', self.volume)
        port = w.free_port()
        url = 'http://127.0.0.1:%d%s' % (port, w.WEBHOOK)
        first = self.tag + '-1'
        self.start(first, port)
        pids = self.no_zombies(first)
        self.assertEqual(pids[1], 'tini', pids)

        # From the host: the registration check and one delivery, then a
        # delivery of each sample, with Ids of our own; one to tenant2.
        status, out, err = w.run_whr(['probe', url],
                                     env={'WHR_SECRET': SECRET}, timeout=30)
        self.assertEqual(status, 0, out + err)
        self.assertIn('echo: pass', out)
        self.assertIn('delivery: pass', out)
        ids = {re.search(r'Id ([0-9a-f]{32})', out).group(1)}
        for i, sample in enumerate(SAMPLES):
            did = 'container-%d-%s' % (i, sample)
            out = self.send(url, '--sample', sample, '--id', did)
            self.assertIn('delivered: Id %s' % did, out)
            ids.add(did)
        self.send(url + '/tenant2', '--sample', 'CourseStarted', '--id',
                  'container-tenant2', secret=SECRET2)
        ids.add('container-tenant2')
        bad = w.post(port, w.delivery(), SECRET2)
        self.assertEqual(bad.status, 400, bad)

        # The secrets file, written again in place on the host, is read
        # again through the bind mount; SIGHUP, passed on by tini, reads
        # it too.
        with open(self.secret, 'w') as f:
            f.write('%s\ntenant2=%s\n' % (SECRET, SECRET2))
        self.wait_logs(first, r'info  secrets reloaded \(/run/secrets/whr '
                       r'changed\): 2 receiver id\(s\)')
        self.pm.run('kill', '--signal', 'HUP', first)
        self.wait_logs(first, r'info  secrets reloaded \(SIGHUP\): 2 '
                       r'receiver id\(s\)')

        # Inside: the tracker's tables and the inbox.
        rows = self.exec_json(first, 'whr', 'enrollments', '--format',
                              'json')
        self.assertIn('alex.wilber@contoso.com', {r['email'] for r in rows})
        listed = self.exec_json(first, 'whr', 'inbox', '--format', 'json',
                                'list', '--limit', '0')
        self.assertEqual({n['id'] for n in listed}, ids)
        before = sorted((n['seq'], n['id'], n['index'], n['action'])
                        for n in listed)

        # The health check, as podman runs it (no timer without systemd).
        status, out, err = self.pm.run('healthcheck', 'run', first,
                                       check=False)
        self.assertEqual(status, 0, out + err)
        health = self.state(first)
        health = health.get('Health') or health.get('Healthcheck')
        self.assertEqual(health['Status'], 'healthy', health)
        self.assertRegex(health['Log'][-1]['Output'],
                         r'^healthcheck: ok: http://127\.0\.0\.1:8080/'
                         r'readyz: 200 ')

        # podman stop: SIGTERM to tini, on to whr, which ends cleanly long
        # before the stop timeout.
        start = time.monotonic()
        self.pm.run('stop', first, timeout=60)
        took = time.monotonic() - start
        state = self.state(first)
        log = self.logs(first)
        self.assertEqual(state['Status'], 'exited')
        self.assertEqual(state['ExitCode'], 0, log)
        self.assertLess(took, 10, log)
        self.assertRegex(log, r'info  SIGTERM: shutting down')
        self.assertRegex(log, r'info  stopped\n$')
        self.assertIsNone(re.search(r'(?m)^\S+ (error|warn) ', log), log)
        w.assert_nothing_secret(log, {SECRET, SECRET2}, 'container log')

        # A new container on the same volume: everything is there. It runs
        # an exec handler whose command leaves an orphan behind, for tini
        # to reap, and a plugin from a mounted folder.
        self.pm.run('rm', first)
        second = self.tag + '-2'
        plugins = '/usr/local/lib/whr/plugins'
        self.start(second, port, 'serve', '--handler',
                   'exec:ReapCheck=/bin/sh -c "sleep 0.3 & exit 0"',
                   '--plugin', plugins + '/completions.so',
                   volumes=['%s:%s:ro' % (self.plugin_folder(), plugins)])
        self.assertIn('0 notification(s) to handle', self.logs(second))
        listed = self.exec_json(second, 'whr', 'inbox', '--format', 'json',
                                'list', '--limit', '0')
        self.assertEqual(sorted((n['seq'], n['id'], n['index'], n['action'])
                                for n in listed), before)
        self.assertTrue(all(n['state'] == 'done' for n in listed), listed)
        again = self.exec_json(second, 'whr', 'enrollments', '--format',
                               'json')
        self.assertEqual(again, rows)
        # a resend of an old delivery is recognised
        out = self.send(url, '--sample', 'CourseEnrollment', '--id',
                        'container-0-CourseEnrollment')
        self.send(url, '--action', 'ReapCheck', '--id', 'container-reap')
        self.send(url, '--sample', 'CourseCompleted', '--id',
                  'container-plugin')
        self.wait_logs(second, r'completions: course \S+: 1 so far')
        self.wait_done(second, 'container-reap')
        time.sleep(0.6)     # the orphan's sleep ends
        self.no_zombies(second)
        self.pm.run('stop', second, timeout=60)
        self.assertEqual(self.state(second)['ExitCode'], 0,
                         self.logs(second))

    def wait_done(self, name, did, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            shown = self.exec_json(name, 'whr', 'inbox', '--format', 'json',
                                   'list', '--limit', '0')
            mine = [n for n in shown if n['id'] == did]
            if mine and all(n['state'] == 'done' for n in mine):
                return mine
            if time.monotonic() > deadline:
                raise AssertionError('%s not done: %r\n%s'
                                     % (did, mine, self.logs(name)))
            time.sleep(0.2)


if __name__ == '__main__':
    w.main()
