"""A throwaway PostgreSQL cluster for tests (issue 15).

    with Cluster() as pg:
        url = pg.url()              # postgresql://whr:PASSWORD@127.0.0.1:PORT/whr

The cluster is made with initdb in a temporary folder, as the `postgres`
user when we are root (initdb and the server refuse root), listens on a
free port on 127.0.0.1 only, with its socket in that folder, and is
stopped and removed when the block ends. Its role `whr` logs in over TCP
with a password (scram-sha-256); the superuser `postgres` only through the
socket, for the test's own statements (psql()).

Run as a program, it wraps a command in a cluster, for the meson tests
of suite `postgres`:

    python3 tests/integration/whrtest/postgres.py COMMAND [ARGS...]

starts a cluster, runs COMMAND with WHR_TEST_POSTGRES set to the URL of
its database, stops it and exits with COMMAND's status. Without
PostgreSQL it exits 77 (a skip), or 1 when CI=true: CI must run these.

Only the standard library; the server's programs are Debian's
(/usr/lib/postgresql/VERSION/bin, not on PATH).
"""

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SKIP = 77


def bindir():
    """The newest Debian server's programs, or None."""
    found = []
    for d in glob.glob('/usr/lib/postgresql/*/bin'):
        if os.access(os.path.join(d, 'initdb'), os.X_OK):
            try:
                found.append((int(d.split('/')[-2]), d))
            except ValueError:
                pass
    return max(found)[1] if found else None


def unavailable():
    """Why no cluster can be made here, or None."""
    if bindir() is None:
        return ('PostgreSQL is not installed (apt-get install postgresql; '
                'scripts/install-deps --test)')
    if os.geteuid() == 0:
        try:
            pwd.getpwnam('postgres')
        except KeyError:
            return 'running as root without a postgres user to run it as'
    if shutil.which('psql') is None and not os.path.exists(
            os.path.join(bindir(), 'psql')):
        return 'psql is missing'
    return None


def require(test=None):
    """Skip the calling test (unittest) without PostgreSQL; fail under
    CI=true, where everything must run."""
    why = unavailable()
    if why is None:
        return
    if os.environ.get('CI') == 'true':
        raise AssertionError('CI=true and no PostgreSQL: ' + why)
    raise unittest.SkipTest(why)


def write_private(path, text):
    """@text in the file @path, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class ClusterError(AssertionError):
    pass


class Cluster:
    """One server with one database (`whr`, owned by role `whr`).

    durable=False turns fsync off: the tests check what whr does, not
    the disk, and run several times faster on a shared machine."""

    def __init__(self, durable=False, database='whr', user='whr'):
        self.durable = durable
        self.database = database
        self.user = user
        self.password = secrets.token_urlsafe(18)
        self.bin = bindir()
        self.tmp = None
        self.port = None
        self.proc_user = None

    # -- running the server's programs --

    def _run(self, argv, check=True, **kw):
        cmd = list(argv)
        if os.geteuid() == 0:
            cmd = ['runuser', '-u', 'postgres', '--'] + cmd
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=self.tmp, **kw)
        if check and p.returncode != 0:
            raise ClusterError('%s failed (%d):\n%s' % (
                ' '.join(argv), p.returncode,
                p.stdout.decode('utf-8', 'replace')))
        return p

    def _prog(self, name):
        return os.path.join(self.bin, name)

    @property
    def data(self):
        return os.path.join(self.tmp, 'data')

    @property
    def sockets(self):
        return os.path.join(self.tmp, 'sockets')

    @property
    def log_path(self):
        return os.path.join(self.tmp, 'server.log')

    # -- life --

    def start(self):
        why = unavailable()
        if why is not None:
            raise ClusterError(why)
        self.tmp = tempfile.mkdtemp(prefix='whr-pg-')
        os.makedirs(self.sockets)
        pwfile = os.path.join(self.tmp, 'superuser-password')
        with open(pwfile, 'w') as f:
            f.write(secrets.token_urlsafe(18) + '\n')
        if os.geteuid() == 0:
            pg = pwd.getpwnam('postgres')
            for path in (self.tmp, self.sockets, pwfile):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        try:
            self._run([self._prog('initdb'), '-D', self.data, '-U',
                       'postgres', '--pwfile', pwfile, '-E', 'UTF8',
                       '--locale=C.UTF-8', '--no-sync', '--auth-local=trust',
                       '--auth-host=scram-sha-256'])
            os.unlink(pwfile)
            self._start_server()
            self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'"
                      % (self.user, self.password))
            self.psql('CREATE DATABASE %s OWNER %s'
                      % (self.database, self.user))
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, port=None, extra=()):
        last = None
        for _ in range(1 if port else 3):
            self.port = port or free_port()
            options = ['-c', 'listen_addresses=127.0.0.1',
                       '-p', str(self.port), '-k', self.sockets,
                       '-c', 'max_connections=100', *extra]
            if not self.durable:
                options += ['-c', 'fsync=off',
                            '-c', 'full_page_writes=off']
            p = self._run([self._prog('pg_ctl'), '-D', self.data, '-l',
                           self.log_path, '-w', '-t', '60', '-o',
                           ' '.join(options), 'start'], check=False)
            if p.returncode == 0:
                return
            last = p.stdout.decode('utf-8', 'replace') + self.server_log()
        raise ClusterError('the PostgreSQL server did not start:\n%s' % last)

    def stop(self):
        if self.tmp is None:
            return
        if os.path.exists(os.path.join(self.data, 'postmaster.pid')):
            self._run([self._prog('pg_ctl'), '-D', self.data, '-m',
                       'immediate', '-w', 'stop'], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None

    def restart(self, mode='fast'):
        """Stop the server and start it again on the same port (a
        restart as a failover looks to whr)."""
        self.pause(mode)
        self.resume()

    def pause(self, mode='fast'):
        """Stop the server (its connections end) until resume()."""
        self._run([self._prog('pg_ctl'), '-D', self.data, '-m', mode, '-w',
                   'stop'])

    def resume(self):
        """Start the server again, on the same port, with the same data."""
        options = ['-c', 'listen_addresses=127.0.0.1', '-p', str(self.port),
                   '-k', self.sockets]
        if not self.durable:
            options += ['-c', 'fsync=off', '-c', 'full_page_writes=off']
        self._run([self._prog('pg_ctl'), '-D', self.data, '-l',
                   self.log_path, '-w', '-o', ' '.join(options), 'start'])

    def standby(self):
        """A hot standby of this server as it is now, in a Cluster of its
        own (not started: start_standby()): a base backup, with nothing
        to stream from afterwards, as a failover may leave one."""
        sb = Cluster(self.durable, self.database, self.user)
        sb.password = self.password
        sb.tmp = tempfile.mkdtemp(prefix='whr-pg-standby-')
        os.makedirs(sb.sockets)
        if os.geteuid() == 0:
            pg = pwd.getpwnam('postgres')
            for path in (sb.tmp, sb.sockets):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        try:
            self._run([self._prog('pg_basebackup'), '-h', self.sockets,
                       '-p', str(self.port), '-U', 'postgres', '-D',
                       sb.data, '-X', 'stream', '--checkpoint=fast',
                       '--no-sync'])
            sb._run(['touch', os.path.join(sb.data, 'standby.signal')])
        except BaseException:
            sb.stop()
            raise
        return sb

    def start_standby(self, port, extra=()):
        """Start a standby() on @port (the old primary's, say), with the
        server options @extra."""
        try:
            self._start_server(port, extra)
        except BaseException:
            self.stop()
            raise
        return self

    def promote(self):
        self._run([self._prog('pg_ctl'), '-D', self.data, '-w', 'promote'])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- using it --

    def url(self, password=True, database=None):
        """The database's URL, with the password in it unless
        @password is False (then give it through PGPASSFILE)."""
        auth = self.user + (':' + self.password if password else '')
        return 'postgresql://%s@127.0.0.1:%d/%s' % (
            auth, self.port, database or self.database)

    def passfile(self, folder):
        """A PGPASSFILE for url(password=False), in @folder (0600)."""
        return write_private(os.path.join(folder, 'pgpass'),
                             '127.0.0.1:%d:%s:%s:%s\n' % (
                                 self.port, '*', self.user, self.password))

    def url_file(self, folder, name='url', database=None):
        """A WHR_DATABASE_FILE: @database's URL, password and all, in
        the file @name in @folder (0600)."""
        return write_private(os.path.join(folder, name),
                             self.url(database=database) + '\n')

    def psql(self, sql, database='postgres'):
        """Run @sql as the superuser; its output, unaligned, one row a
        line, fields separated by |."""
        p = self._run([self._prog('psql'), '-h', self.sockets, '-p',
                       str(self.port), '-U', 'postgres', '-d', database,
                       '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql])
        return p.stdout.decode('utf-8', 'replace').strip()

    def server_log(self):
        try:
            with open(self.log_path, encoding='utf-8',
                      errors='replace') as f:
                return f.read()
        except OSError:
            return ''


class ClusterTestCase(unittest.TestCase):
    """A test class with a cluster of its own. Its setUpClass skips
    without PostgreSQL (fails under CI=true), then gives the class the
    cluster (cls.pg) and a temporary folder named after tmp_prefix
    (cls.tmp), both removed after it, and in the folder a
    WHR_DATABASE_FILE for the cluster's database (cls.url_file) and a
    PGPASSFILE (cls.passfile)."""
    tmp_prefix = 'whr-pg-'

    @classmethod
    def setUpClass(cls):
        require()
        cls.pg = Cluster().start()
        cls.addClassCleanup(cls.pg.stop)
        cls.tmp = tempfile.TemporaryDirectory(prefix=cls.tmp_prefix)
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.url_file = cls.pg.url_file(cls.tmp.name)
        cls.passfile = cls.pg.passfile(cls.tmp.name)


def main(argv):
    if not argv:
        print('usage: postgres.py COMMAND [ARGS...]', file=sys.stderr)
        return 2
    why = unavailable()
    if why is not None:
        print('postgres.py: ' + why, file=sys.stderr)
        return 1 if os.environ.get('CI') == 'true' else SKIP
    started = time.monotonic()
    with Cluster() as pg:
        print('postgres.py: cluster on 127.0.0.1:%d ready in %.1f s'
              % (pg.port, time.monotonic() - started), file=sys.stderr)
        env = dict(os.environ, WHR_TEST_POSTGRES=pg.url())
        status = subprocess.run(argv, env=env).returncode
        if status != 0:
            sys.stderr.write(pg.server_log()[-4000:])
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
