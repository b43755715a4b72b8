"""A command for the exec handler's tests (test_exec.py), run as
`python3 probe.py OUTDIR MODE [ARGS...]`.

Each run first writes OUTDIR/<time>-<pid>.json: what it was given (its
argv, environment, standard input, open descriptors) and when it
started; then it does what MODE says:

  exit N [TEXT]            write TEXT to standard error, exit with N
  until STATE K CODE [TEXT] exit with CODE (and TEXT on standard error)
                           for the first K runs (counted in the file
                           STATE), then 0
  span SECONDS             sleep, then note the end time in the record
  hang PIDFILE [noterm]    start a child that sleeps, write both pids to
                           PIDFILE, sleep for ever (noterm: ignore SIGTERM,
                           in both)
  orphan PIDFILE           start a child that sleeps holding our standard
                           input and error, write its pid to PIDFILE, and
                           exit 0 at once
  signal NAME              kill itself with signal NAME
  noread                   exit 0 without reading standard input
"""

import json
import os
import signal
import subprocess
import sys
import time


def open_fds():
    """The descriptors open now, with what they point to (the one that
    lists the folder is closed again by the time we look)."""
    fds = {}
    for name in os.listdir('/proc/self/fd'):
        try:
            fds[name] = os.readlink('/proc/self/fd/' + name)
        except OSError:
            pass
    return fds


def main():
    started = time.time()
    fds = open_fds()
    out, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == 'noread':
        sys.exit(0)
    stdin = sys.stdin.buffer.read()
    record = {
        'start': started,
        'pid': os.getpid(),
        'argv': sys.argv[3:],
        'env': dict(os.environ),
        'stdin': stdin.decode('utf-8', 'surrogateescape'),
        'fds': fds,
        'pgid': os.getpgid(0),
    }
    path = os.path.join(out, '%d-%d.json' % (time.time_ns(), os.getpid()))

    def save():
        with open(path + '.tmp', 'w') as f:
            json.dump(record, f)
        os.rename(path + '.tmp', path)

    if mode == 'span':
        time.sleep(float(args[0]))
        record['end'] = time.time()
    save()

    if mode == 'exit':
        if len(args) > 1:
            sys.stderr.write(args[1])
        sys.exit(int(args[0]))
    if mode == 'until':
        state, k, code = args[0], int(args[1]), int(args[2])
        try:
            with open(state) as f:
                runs = int(f.read())
        except FileNotFoundError:
            runs = 0
        with open(state, 'w') as f:
            f.write(str(runs + 1))
        if runs < k:
            if len(args) > 3:
                sys.stderr.write(args[3])
            sys.exit(code)
        sys.exit(0)
    if mode == 'span':
        sys.exit(0)
    if mode == 'hang':
        if len(args) > 1 and args[1] == 'noterm':
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            child = subprocess.Popen(
                [sys.executable, '-c',
                 'import signal, time\n'
                 'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
                 'time.sleep(1000)\n'])
        else:
            child = subprocess.Popen(['sleep', '1000'])
        with open(args[0] + '.tmp', 'w') as f:
            f.write('%d %d\n' % (os.getpid(), child.pid))
        os.rename(args[0] + '.tmp', args[0])
        sys.stderr.write('hanging now\n')
        sys.stderr.flush()
        time.sleep(1000)
    if mode == 'orphan':
        child = subprocess.Popen(['sleep', '1000'])
        with open(args[0] + '.tmp', 'w') as f:
            f.write('%d\n' % child.pid)
        os.rename(args[0] + '.tmp', args[0])
        sys.exit(0)
    if mode == 'signal':
        os.kill(os.getpid(), getattr(signal, args[0]))
        time.sleep(10)
    if mode == 'cleanup':
        # On SIGTERM: say so on stderr, then leave the marker args[0].
        def on_term(signum, frame):
            sys.stderr.write('cleaning up\n')
            sys.stderr.flush()
            open(args[0], 'w').close()
            sys.exit(1)
        signal.signal(signal.SIGTERM, on_term)
        time.sleep(1000)
    sys.exit('probe.py: unknown mode %r' % mode)


main()
