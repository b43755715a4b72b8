"""A command for test_hardening.py's exec handler, run as
`python3 peek.py OUTDIR`: what a command of whr's own user can get out of
whr, its parent. It writes OUTDIR/<pid>.json with:

  ppid         its parent's pid (whr, which started it without a shell)
  environ      the bytes of /proc/PPID/environ (latin-1), or null
  environ_error  why it could not be read (errno name), or null
  own_env      its own environment
  mem          "opened", or the errno name of open(/proc/PPID/mem)
  ptrace       "attached", or the errno name of PTRACE_SEIZE on PPID
  uid          the uid it runs as

PTRACE_SEIZE does not stop the parent; the tracer's exit detaches it.
Then it exits 0.
"""

import ctypes
import errno
import json
import os
import sys

PTRACE_SEIZE = 0x4206


def errno_name(e):
    return errno.errorcode.get(e, str(e))


def main():
    out = sys.argv[1]
    ppid = os.getppid()
    sys.stdin.buffer.read()
    record = {'ppid': ppid, 'uid': os.getuid(), 'own_env': dict(os.environ)}
    try:
        with open('/proc/%d/environ' % ppid, 'rb') as f:
            record['environ'] = f.read().decode('latin-1')
        record['environ_error'] = None
    except OSError as e:
        record['environ'] = None
        record['environ_error'] = errno_name(e.errno)
    try:
        fd = os.open('/proc/%d/mem' % ppid, os.O_RDONLY)
        os.close(fd)
        record['mem'] = 'opened'
    except OSError as e:
        record['mem'] = errno_name(e.errno)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    rc = libc.ptrace(ctypes.c_long(PTRACE_SEIZE), ctypes.c_long(ppid),
                     ctypes.c_void_p(0), ctypes.c_void_p(0))
    record['ptrace'] = ('attached' if rc == 0
                        else errno_name(ctypes.get_errno()))
    path = os.path.join(out, '%d.json' % os.getpid())
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f)
    os.rename(path + '.tmp', path)
    sys.exit(0)


main()
