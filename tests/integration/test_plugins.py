"""Plugins (`whr serve --plugin PATH.so`) and programs of one's own, built
the way a customer builds them: whr is installed into a temporary prefix
(meson install --destdir), and the examples of handlers/examples/ are
built from copies against that installation only, through pkg-config,
with their Makefiles and with meson. Then the installed whr loads the
plugins (LD_LIBRARY_PATH names the installed libwhr), and the example
program runs as a receiver of its own.

In a sanitizer build (b_sanitize), libwhr links the sanitizer runtimes,
so everything built here gets the same -fsanitize flags: a program must
load the ASan runtime first, and a plugin may as well be checked too."""

import glob
import json
import re
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402

SECRET_ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}
HERE = os.path.dirname(os.path.abspath(__file__))

# Filled in by setUpModule().
T = None


def _env(name):
    value = os.environ.get(name)
    if not value or not os.path.isdir(value):
        raise RuntimeError('%s is not set or not a folder (run through '
                           'meson test)' % name)
    return value


def _sanitize_option(build_root):
    """The build's b_sanitize as a -fsanitize value, or None."""
    path = os.path.join(build_root, 'meson-info', 'intro-buildoptions.json')
    with open(path) as f:
        options = json.load(f)
    for o in options:
        if o['name'] == 'b_sanitize':
            value = o['value']
            if isinstance(value, list):     # meson >= 1.8
                value = ','.join(value)
            return None if value in ('', 'none') else value
    return None


def _run(argv, env, cwd=None, timeout=60):
    p = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode('utf-8', 'replace')
    if p.returncode != 0:
        raise AssertionError('%s failed with status %d:\n%s'
                             % (shlex.join(argv), p.returncode, out))
    return out


class Installed:
    """whr installed under a temporary folder, and what was built
    against it."""

    def __init__(self):
        self.build_root = _env('WHR_BUILD_ROOT')
        self.source_root = _env('WHR_SOURCE_ROOT')
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-plugins-')
        self.dir = self.tmp.name
        self.root = os.path.join(self.dir, 'root')
        self.sanitize = _sanitize_option(self.build_root)

    def install(self):
        started = time.monotonic()
        _run(['meson', 'install', '-C', self.build_root, '--destdir',
              self.root, '--no-rebuild', '--quiet'],
             env=dict(os.environ))
        (pc,) = glob.glob(os.path.join(self.root, '**', 'pkgconfig',
                                       'whr.pc'), recursive=True)
        (self.whr,) = glob.glob(os.path.join(self.root, '**', 'bin', 'whr'),
                                recursive=True)
        (whr_h,) = glob.glob(os.path.join(self.root, '**', 'include', 'whr',
                                          'whr.h'), recursive=True)
        self.libdir = os.path.dirname(os.path.dirname(pc))
        self.includedir = os.path.dirname(os.path.dirname(whr_h))
        # Only the system's tools, and pkg-config looking at the
        # installation first: nothing from the source or build tree.
        self.build_env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'HOME': self.dir,
            'PKG_CONFIG_PATH': os.path.dirname(pc),
            'PKG_CONFIG_SYSROOT_DIR': self.root,
        }
        self.cflags = '-O1 -g -Wall -Wextra -Werror'
        if self.sanitize:
            self.cflags += (' -fsanitize=%s -fno-omit-frame-pointer'
                            % self.sanitize)
        self.install_seconds = time.monotonic() - started

    def pkg_config(self):
        return _run(['pkg-config', '--cflags', '--libs', 'whr'],
                    env=self.build_env).split()

    def copy_examples(self):
        self.examples = os.path.join(self.dir, 'examples')
        shutil.copytree(os.path.join(self.source_root, 'handlers',
                                     'examples'), self.examples)

    def make(self, example, target):
        """Build @example with its Makefile; returns the path of @target
        and the headers the compiler read (from the dependency file that
        -MD writes)."""
        folder = os.path.join(self.examples, example)
        _run(['make', '-C', folder, 'CFLAGS=' + self.cflags + ' -MD'],
             env=self.build_env)
        stem = os.path.splitext(target)[0]
        with open(os.path.join(folder, stem + '.d')) as f:
            headers = f.read().replace('\\\n', ' ').split()[1:]
        return os.path.join(folder, target), headers

    def meson(self, example, target):
        src = os.path.join(self.examples, example)
        out = os.path.join(self.dir, 'meson-' + example)
        args = ['meson', 'setup', out, src, '-Dwerror=true']
        if self.sanitize:
            args += ['-Db_sanitize=' + self.sanitize, '-Db_lundef=false']
        _run(args, env=self.build_env)
        _run(['meson', 'compile', '-C', out], env=self.build_env)
        return os.path.join(out, target)

    def compile_plugin(self, name):
        """tests/integration/plugins/NAME.c as NAME.so, with the
        installation's flags."""
        out = os.path.join(self.dir, 'test-plugins', name + '.so')
        os.makedirs(os.path.dirname(out), exist_ok=True)
        _run(['cc', *shlex.split(self.cflags), '-fPIC', '-shared', '-o', out,
              os.path.join(HERE, 'plugins', name + '.c'),
              *self.pkg_config()], env=self.build_env)
        return out

    def run_env(self, extra=None):
        env = {'LD_LIBRARY_PATH': self.libdir}
        env.update(extra or {})
        return env


def setUpModule():
    global T
    for tool in ('make', 'pkg-config', 'meson', 'cc', 'nm'):
        # A failure, not a skip: CI must build the examples.
        if shutil.which(tool) is None:
            raise RuntimeError('%s is not installed (scripts/install-deps '
                               'installs what the tests need)' % tool)
    T = Installed()
    try:
        T.install()
        T.copy_examples()
        T.plugin_make, T.plugin_headers = T.make('plugin',
                                                 'completions.so')
        T.plugin_meson = T.meson('plugin', 'completions.so')
        T.welcome, T.welcome_headers = T.make('own-main', 'welcome')
        T.no_symbol = T.compile_plugin('no-symbol')
        T.future_api = T.compile_plugin('future-api')
        T.init_fails = T.compile_plugin('init-fails')
    except BaseException:
        T.tmp.cleanup()
        raise


def tearDownModule():
    if T is not None:
        T.tmp.cleanup()


class Program(w.Server):
    """w.Server for a program named by its path: the installed whr
    (argv [whr, 'serve']) or the example program."""

    def __init__(self, argv, args=(), **kw):
        super().__init__(args, program=list(argv), **kw)


def run(argv, env=None, cwd=None, timeout=10):
    """Run a program expected to exit by itself, under the wrapper.
    Returns (status, its own stderr lines as one text)."""
    p = subprocess.run([*w.WRAPPER, *argv], env=w.minimal_env(env),
                       cwd=cwd or T.dir, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=w.slow(timeout))
    err = '\n'.join(w.program_lines(p.stderr.decode('utf-8', 'replace')))
    w.assert_nothing_secret(err, w.secrets_of(env, argv), 'standard error')
    return p.returncode, err


def completed(course, *users):
    return {'Action': 'CourseCompleted',
            'Course': {'Id': course},
            'Users': [{'Id': u} for u in users],
            'TimeStamp': '2024-05-01T10:15:30Z'}


def wait_lines(path, count, timeout=5):
    deadline = time.monotonic() + w.slow(timeout)
    while True:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= count or time.monotonic() > deadline:
            time.sleep(0.1)     # an extra line would show up too
            with open(path) as f:
                return f.read().splitlines()
        time.sleep(0.01)


class Build(unittest.TestCase):
    def test_pkg_config_names_the_installation_only(self):
        flags = T.pkg_config()
        self.assertIn('-I' + T.includedir, flags)
        self.assertIn('-L' + T.libdir, flags)
        self.assertIn('-lwhr', flags)
        for f in flags:
            self.assertNotIn(T.source_root, f)
            self.assertNotIn(T.build_root, f)
        for header in ('whr.h', 'plugin.h', 'version.h'):
            self.assertTrue(os.path.isfile(os.path.join(
                T.includedir, 'whr', header)), header)

    def test_makefiles_build_against_the_installation(self):
        include = os.path.join(T.includedir, 'whr')
        for headers in (T.plugin_headers, T.welcome_headers):
            self.assertIn(os.path.join(include, 'whr.h'), headers)
            self.assertIn(os.path.join(include, 'plugin.h'), headers)
            for h in headers:
                self.assertFalse(h.startswith(T.source_root + '/'), h)
                self.assertFalse(h.startswith(T.build_root + '/'), h)

    def test_plugin_exports_whr_plugin_only(self):
        for so in (T.plugin_make, T.plugin_meson):
            out = _run(['nm', '-D', '--defined-only', so], env=T.build_env)
            names = {l.split()[-1] for l in out.splitlines()
                     if ' D ' in l or ' T ' in l or ' R ' in l}
            self.assertIn('whr_plugin', names, so)
            self.assertNotIn('completions_init', names, so)


class Plugin(unittest.TestCase):
    def serve(self, plugin, args=(), env=None):
        self.file = os.path.join(tempfile.mkdtemp(dir=T.dir), 'out.tsv')
        env = T.run_env({**SECRET_ENV, 'COMPLETIONS_FILE': self.file,
                         **(env or {})})
        return Program([T.whr, 'serve'],
                       ['--plugin', plugin, '--no-enrollments', *args],
                       env=env)

    def check_plugin_runs(self, plugin, args=(), handlers=1):
        with self.serve(plugin, args) as srv:
            self.assertRegex(srv.log(), r'plugin completions 1\.0\.0 loaded '
                             r'from ' + re.escape(plugin))
            self.assertRegex(srv.log(), r'ready: 1 receiver id\(s\), '
                             r'%d handler\(s\)' % handlers)
            r = w.post(srv.port, w.delivery(notifications=[
                completed('c1', 'u1', 'u2'),
                {'Action': 'CourseStarted', 'Course': {'Id': 'c9'},
                 'Users': [{'Id': 'u9'}]},
                completed('c2', 'u3')]), V1_SECRET)
            self.assertEqual(r.status, 200, r)
            srv.wait_log(r'completions: course c1: 2 so far')
            srv.wait_log(r'completions: course c2: 1 so far')
            # What it cannot read, it rejects with a reason.
            r = w.post(srv.port, w.delivery(notifications=[
                {'Action': 'CourseCompleted', 'Users': [{'Id': 'u5'}]},
                completed('c1', 'u4')]), V1_SECRET)
            self.assertEqual(r.status, 200, r)
            srv.wait_log(r'completions: course c1: 3 so far')
            srv.wait_log(r'no Course\.Id')
            lines = wait_lines(self.file, 4)
        self.assertEqual(sorted(lines), [
            'c1\tu1\t2024-05-01T10:15:30Z',
            'c1\tu2\t2024-05-01T10:15:30Z',
            'c1\tu4\t2024-05-01T10:15:30Z',
            'c2\tu3\t2024-05-01T10:15:30Z'])

    def test_built_with_make(self):
        self.check_plugin_runs(T.plugin_make)

    def test_built_with_meson_among_builtin_handlers(self):
        self.check_plugin_runs(T.plugin_meson, ['--handler', 'noop'],
                               handlers=2)

    def test_bare_name_is_taken_from_the_current_folder(self):
        # Not searched in the library path: "libwhr.so" is in
        # LD_LIBRARY_PATH, but not in the current folder.
        status, err = run([T.whr, 'serve', '--plugin', 'libwhr.so',
                           '--no-enrollments'],
                          env=T.run_env(SECRET_ENV))
        self.assertEqual(status, 2, err)
        self.assertIn('whr serve: --plugin libwhr.so: cannot load: '
                      './libwhr.so: cannot open shared object file: '
                      'No such file or directory', err)
        # ... and found there, run from the plugin's folder.
        folder, name = os.path.split(T.plugin_make)
        status, err = run([T.whr, 'serve', '--plugin', name,
                           '--no-enrollments', '--listen', '127.0.0.1:0',
                           '--nosuch-option'],
                          env=T.run_env(SECRET_ENV), cwd=folder)
        self.assertEqual(status, 2, err)    # stopped by the bad option
        self.assertIn('plugin completions 1.0.0 loaded from '
                      'completions.so', err)


class BadPlugin(unittest.TestCase):
    """Each stops whr serve before it starts: status 2 and a message
    that names the file and the reason."""

    def refused(self, path, env=None, cwd=None):
        status, err = run([T.whr, 'serve', '--plugin', path,
                           '--no-enrollments', '--listen', '127.0.0.1:0'],
                          env=T.run_env({**SECRET_ENV, **(env or {})}),
                          cwd=cwd)
        self.assertEqual(status, 2, err)
        self.assertNotIn(' ready:', err)
        self.assertNotIn('loaded from', err)
        return err

    def test_missing_file(self):
        path = os.path.join(T.dir, 'nosuch.so')
        err = self.refused(path)
        self.assertIn('whr serve: --plugin %s: cannot load: %s: cannot open '
                      'shared object file: No such file or directory'
                      % (path, path), err)

    def test_not_a_shared_object(self):
        path = os.path.join(T.dir, 'text.so')
        with open(path, 'w') as f:
            f.write('This is a text file, not a shared object.\n' * 4)
        err = self.refused(path)
        self.assertIn('whr serve: --plugin %s: cannot load: %s: invalid ELF '
                      'header' % (path, path), err)

    def test_empty_path(self):
        status, err = run([T.whr, 'serve', '--plugin=', '--no-enrollments'],
                          env=T.run_env(SECRET_ENV))
        self.assertEqual(status, 2, err)
        self.assertIn('whr serve: --plugin needs a path', err)

    def test_no_whr_plugin_symbol(self):
        err = self.refused(T.no_symbol)
        self.assertIn('whr serve: --plugin %s: not a whr plugin (it has no '
                      'whr_plugin symbol' % T.no_symbol, err)

    def test_library_that_is_no_plugin(self):
        lib = os.path.join(T.libdir, 'libwhr.so')
        err = self.refused(lib)
        self.assertIn('--plugin %s: not a whr plugin' % lib, err)

    def test_other_api_version(self):
        err = self.refused(T.future_api)
        self.assertRegex(err, r'whr serve: --plugin %s: built for plugin API '
                         r'999, this whr provides 1: rebuild it against '
                         r'whr \d+\.\d+$' % re.escape(T.future_api),
                         )

    def test_init_fails(self):
        err = self.refused(T.init_fails)
        self.assertIn('init-fails: no configuration', err)
        self.assertIn('whr serve: --plugin %s: plugin init-fails failed to '
                      'start: Invalid argument' % T.init_fails, err)
        # The handler it registered was freed with the receiver, while
        # the plugin was still loaded.
        self.assertIn('init-fails: destroyed', err)
        self.assertLess(err.index('failed to start'),
                        err.index('init-fails: destroyed'))

    def test_example_with_a_file_it_cannot_open(self):
        path = os.path.join(T.dir, 'nosuch-dir', 'out.tsv')
        err = self.refused(T.plugin_make, env={'COMPLETIONS_FILE': path})
        self.assertIn('completions: cannot open COMPLETIONS_FILE %s: No such '
                      'file or directory' % path, err)
        self.assertIn('whr serve: --plugin %s: plugin completions failed to '
                      'start: No such file or directory' % T.plugin_make, err)

    def test_same_plugin_twice(self):
        # Its handler's name is taken by the first: init fails.
        status, err = run([T.whr, 'serve', '--plugin', T.plugin_make,
                           '--plugin', T.plugin_meson, '--no-enrollments'],
                          env=T.run_env(SECRET_ENV))
        self.assertEqual(status, 2, err)
        self.assertIn('whr serve: --plugin %s: plugin completions failed to '
                      'start: Invalid argument' % T.plugin_meson, err)


ENROLLMENT = {
    'Action': 'CourseEnrollment',
    'Course': {'Id': 'c1', 'Title': 'Fire safety'},
    'Users': [{'Id': 'u1', 'Email': 'ana@contoso.com'}, {'Id': 'u2'}],
}


class OwnMain(unittest.TestCase):
    def test_runs_its_handler_and_answers_as_whr(self):
        env = T.run_env(SECRET_ENV)
        body = w.delivery(id='e1' * 16, notifications=[
            ENROLLMENT, completed('c1', 'u1')])
        requests = [
            ('POST', body, w.sign(V1_SECRET, body)),
            ('POST', body, w.sign(w.secret('wrong'), body)),
            ('POST', b'{"Id": "x"', None),
        ]

        def answers(srv):
            out = []
            for method, data, signature in requests:
                r = w.post(srv.port, data, signature=signature)
                out.append((r.status, r.body))
            r = w.get(srv.port, w.WEBHOOK + '?echo=abc')
            out.append((r.status, r.body))
            return out

        with Program([T.welcome], env=env) as own:
            mine = answers(own)
            deadline = time.monotonic() + w.slow(5)
            while (own.stdout().count('\n') < 2
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            time.sleep(0.1)
            printed = own.stdout()
        with Program([T.whr, 'serve'], ['--no-enrollments'], env=env) as srv:
            theirs = answers(srv)
        self.assertEqual(printed, 'welcome ana@contoso.com to Fire safety\n'
                                  'welcome (no email) to Fire safety\n')
        self.assertEqual(mine[0][0], 200)
        self.assertEqual(mine[1][0], 400)     # a wrong signature
        self.assertEqual(mine[3], (200, b'abc'))
        self.assertEqual(mine, theirs)

    def test_configuration_error(self):
        status, err = run([T.welcome, '--max-body', 'lots'],
                          env=T.run_env(SECRET_ENV))
        self.assertEqual(status, 2, err)
        self.assertIn('max-body', err)
        status, err = run([T.welcome, '--listen', '127.0.0.1:0'],
                          env=T.run_env())
        self.assertEqual(status, 2, err)

    def test_help(self):
        p = subprocess.run([*w.WRAPPER, T.welcome, '--help'],
                           env=w.minimal_env(T.run_env()),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=w.slow(10))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b'--listen', p.stdout)


if __name__ == '__main__':
    unittest.main(verbosity=2)
