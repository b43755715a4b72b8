"""Where the programs under test are, and the environment they run in."""

import os
import shlex
import time
import unittest



WRAPPER = shlex.split(os.environ.get('WHR_TEST_WRAPPER', ''))

# Variables passed through to the programs under test: never secrets.
PASSTHROUGH_ENV = ('PATH', 'LD_LIBRARY_PATH', 'ASAN_OPTIONS', 'UBSAN_OPTIONS',
                   'LSAN_OPTIONS', 'MSAN_OPTIONS', 'TSAN_OPTIONS',
                   'VALGRIND_LIB', 'MALLOC_PERTURB_', 'MALLOC_CHECK_')

WEBHOOK = '/api/webhooks/incoming/custom'
JSON_TYPE = 'application/json; charset=utf-8'


def _required_env(name):
    # A missing input is a failure, not a skip: a suite that cannot find
    # the programs it tests must not pass (STYLE.md §9, guards).
    value = os.environ.get(name)
    if not value:
        raise RuntimeError('%s is not set (run through meson test)' % name)
    if not os.path.exists(value):
        raise RuntimeError('%s=%s does not exist' % (name, value))
    return value


def whr_bin():
    return _required_env('WHR_BIN')


def recorder_bin():
    return _required_env('WHR_TEST_RECORDER')


def data_path(*parts):
    return os.path.join(_required_env('WHR_TEST_DATA'), *parts)


def wrapped():
    """True when the programs run under WHR_TEST_WRAPPER (valgrind...)."""
    return bool(WRAPPER)


# A program under valgrind runs 10 to 50 times slower: waits for it grow,
# the limits a test asserts on results do not.
SLOW = 20.0 if WRAPPER else 1.0


def slow(seconds):
    """A wait of @seconds, longer under a wrapper."""
    return seconds * SLOW


def wait_until(what, check, timeout=10, interval=0.02):
    """Poll @check every @interval seconds (more for a costly check)
    until it is true; fail naming @what when it is not within @timeout
    seconds (longer under a wrapper)."""
    deadline = time.monotonic() + slow(timeout)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError('not within %.1f s: %s'
                                 % (slow(timeout), what))
        time.sleep(interval)


def skip_if_wrapped(reason):
    """Skip a test whose point is tight timing when a wrapper slows the
    programs down (the test still runs in the normal suite)."""
    return unittest.skipIf(wrapped(), 'under WHR_TEST_WRAPPER: ' + reason)


def timing_bound(seconds):
    """An upper bound on a measured duration: as given normally, relaxed
    under a wrapper."""
    return seconds * (8.0 if WRAPPER else 1.0)


def minimal_env(extra=None):
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    env.setdefault('PATH', '/usr/bin:/bin')
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env
