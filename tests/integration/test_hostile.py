"""Hostile traffic (issue 13): each attack against whr with its default
settings, while a good client posts a signed delivery every 100 ms from
another address. Under every attack:

- whr's RSS stays at most 64 MiB, and is at most 32 MiB 10 s after;
- every good POST is answered 200 within 1 s;
- every delivery answered 200 is in the inbox afterwards;
and under the EMFILE attack whr's CPU stays under 10 % of a core and its
log grows by a few lines a minute at most.

The attackers run from 127.0.0.2 onwards (whrtest/attack.py, a process
of their own), the good client from 127.0.0.1; loopback only. Each
attack is bounded in time, and cut short if whr's RSS passes 1.5 GiB or
its log 256 MiB, so that a whr without the defences does not take the
machine down with it. One line of figures per attack goes to standard
error and to meson-logs/hostile-figures.txt.

Run in the `hostile` suite, once, on the plain build: never under a
wrapper (valgrind) or a sanitizer, whose memory and time say nothing
about whr's.
"""

import json
import math
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import V1_SECRET  # noqa: E402
from whrtest import attack  # noqa: E402
from whrtest.attack import MIB  # noqa: E402

ENV = {'MS_WebHookReceiverSecret_Custom': V1_SECRET}

PEAK_RSS = 64 * MIB
RSS_AFTER = 32 * MIB
LATENCY = 1.0
EMFILE_CPU_PERCENT = 10.0
EMFILE_LOG_LINES_PER_MINUTE = 5
EMFILE_NOFILE = 600


def sanitized_build():
    """The build's b_sanitize, when the tests know the build."""
    root = os.environ.get('WHR_BUILD_ROOT')
    if not root:
        return None
    try:
        with open(os.path.join(root, 'meson-info',
                               'intro-buildoptions.json')) as f:
            options = json.load(f)
    except (OSError, ValueError):
        return None
    for o in options:
        if o.get('name') == 'b_sanitize' and o.get('value') not in (
                None, 'none', ''):
            return o['value']
    return None


def report(line):
    sys.stderr.write('HOSTILE ' + line + '\n')
    sys.stderr.flush()
    root = os.environ.get('WHR_BUILD_ROOT')
    if root and os.path.isdir(os.path.join(root, 'meson-logs')):
        with open(os.path.join(root, 'meson-logs', 'hostile-figures.txt'),
                  'a') as f:
            f.write(time.strftime('%Y-%m-%dT%H:%M:%S ') + line + '\n')


@unittest.skipIf(w.wrapped(), 'under WHR_TEST_WRAPPER: memory and time '
                 'are the wrapper\'s')
@unittest.skipIf(sanitized_build() is not None,
                 'a sanitized build: memory and time are the sanitizer\'s')
class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        attack.raise_nofile()

    def siege(self, name, kind, args, duration, server_args=(),
              program='whr', during=None):
        """Start whr (default settings, plus @server_args), run one
        attack on it, print its figures, and check what every attack
        must leave true. Returns the Result for more checks; whr has
        stopped by then."""
        tmp = tempfile.TemporaryDirectory(prefix='whr-hostile-')
        self.addCleanup(tmp.cleanup)
        data = os.path.join(tmp.name, 'data')
        srv = w.Server(['--data-dir', data, *server_args], env=ENV,
                       program=program)
        try:
            r = attack.Siege(srv, data, kind, args, duration,
                             secret=V1_SECRET, name=name,
                             during=during).run()
            report(r.line())
            # A good POST every 100 ms: most of them must have gone out
            # (an attack cut short sends fewer).
            r.failures = self.failures(r, int(r.attack_seconds * 10 * 0.8))
            if not r.failures:
                srv.stop()
        except BaseException:
            srv.kill()
            sys.stderr.write('---- whr log (last 4 KiB) ----\n%s\n'
                             % srv.log()[-4096:])
            raise
        finally:
            srv.cleanup()
        return r

    def failures(self, r, min_sent):
        out = []
        if r.during_error is not None:
            out.append('the test\'s own step during the attack failed: %r'
                       % r.during_error)
        if 'error' in r.attacker:
            out.append('the attacker failed: %s' % r.attacker['error'])
        if r.peak_rss > PEAK_RSS:
            out.append('RSS reached %.1f MiB during the attack (at most '
                       '%d MiB)%s' % (r.peak_rss / MIB, PEAK_RSS // MIB,
                                     ' and the attack was cut short: '
                                     + r.cut_short if r.cut_short else ''))
        if r.rss_after > RSS_AFTER:
            out.append('RSS was %.1f MiB 10 s after the attack (at most '
                       '%d MiB)' % (r.rss_after / MIB, RSS_AFTER // MIB))
        if len(r.good) < min_sent:
            out.append('only %d good POSTs were sent (expected %d at '
                       'least): the measurement itself is broken'
                       % (len(r.good), min_sent))
        bad = r.not_ok
        if bad:
            kinds = {}
            for status, took in bad:
                key = ('no answer within %.0f s' % took if status is None
                       else 'status %d' % status if status != 200
                       else '200 after more than %.0f s' % LATENCY)
                kinds[key] = kinds.get(key, 0) + 1
            out.append('%d of %d good POSTs were not answered 200 within '
                       '%.0f s: %s' % (len(bad), len(r.good), LATENCY,
                                       ', '.join('%s x%d' % kv for kv in
                                                 sorted(kinds.items()))))
        if r.missing:
            out.append('%d deliveries answered 200 are not in the inbox: '
                       '%s' % (len(r.missing), ', '.join(r.missing[:5])))
        return out

    def check(self, r, *more):
        failures = list(r.failures) + [m for m in more if m]
        if failures:
            self.fail('%s:\n- %s' % (r.name, '\n- '.join(failures)))

    def withstand(self, name, kind, args, duration, **more):
        """siege(), then check() what every attack must leave true."""
        self.check(self.siege(name, kind, args, duration, **more))

    # -- 1. pipelining without reading --

    def test_pipelining_without_reading(self):
        # 50 connections from one address (within any per-client limit),
        # each sending GET /healthz back to back and reading nothing.
        self.withstand('pipelining, 50 connections', 'pipeline',
                       ['--connections', '50', '--reconnect', '1'],
                       duration=10)

    # -- 2. unsigned partial bodies --

    def test_unsigned_partial_bodies(self):
        # 900 connections, 60 from each of 15 addresses (no per-client
        # limit saves whr: the body budget must), each announcing
        # 1,000,000 bytes and sending 0.94 MB of them, then nothing.
        self.withstand('partial bodies, 900 x 0.94 MB', 'partial',
                       ['--connections', '900', '--addresses', '15',
                        '--reconnect', '2'],
                       duration=15)

    # -- 3. connection exhaustion --

    def test_idle_connections(self):
        # 2000 connections that send nothing, 50 from each of 40
        # addresses: twice the connection table, none over a per-client
        # limit; the good client gets in only if idle ones make room.
        self.withstand('idle, 2000 connections', 'idle',
                       ['--connections', '2000', '--addresses', '40'],
                       duration=10)

    def test_slowloris(self):
        # 1500 connections from one address, each sending a request head
        # a byte a second; one that whr closes comes back 5 s later.
        self.withstand('slowloris, 1500 connections', 'slowloris',
                       ['--connections', '1500', '--reconnect', '5'],
                       duration=12)

    # -- 4. EMFILE --

    def test_emfile(self):
        # whr's descriptors limited to 600 (hard and soft: it cannot
        # raise them), below the default --max-connections (1000); 800
        # idle connections, 50 from each of 16 addresses. Once they are
        # in, the limit is cut to 8 below what whr holds, so accept()
        # really fails with EMFILE whatever whr made of its limit at
        # start (descriptors taken by something else, as far as whr
        # can tell).
        def cut_the_limit(siege):
            pid = siege.srv.pid
            # Wait for the connections to settle (at most 5 s).
            last, stable_since = -1, time.monotonic()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                n = attack.fd_count(pid)
                if n != last:
                    last, stable_since = n, time.monotonic()
                elif time.monotonic() - stable_since > 0.5:
                    break
                time.sleep(0.05)
            held = attack.fd_count(pid)
            limit = max(held - 8, 32)
            attack.set_nofile(pid, limit)
            siege.result.notes.append(
                'descriptors: limit %d at start, whr held %d when the '
                'limit was cut to %d' % (EMFILE_NOFILE, held, limit))

        program = ['prlimit', '--nofile=%d:%d' % (EMFILE_NOFILE,
                                                  EMFILE_NOFILE), '--',
                   w.whr_bin(), 'serve']
        r = self.siege('EMFILE, 800 idle connections, %d descriptors'
                       % EMFILE_NOFILE, 'idle',
                       ['--connections', '800', '--addresses', '16'],
                       duration=15, program=program, during=cut_the_limit)
        minutes = max(1, math.ceil(r.attack_seconds / 60))
        self.check(
            r,
            r.cpu_percent >= EMFILE_CPU_PERCENT and
            'whr used %.0f %% of a core during the attack (under %.0f %%)'
            % (r.cpu_percent, EMFILE_CPU_PERCENT),
            r.log_lines > EMFILE_LOG_LINES_PER_MINUTE * minutes and
            'the log grew by %d lines (%d bytes) besides the good requests\' '
            'in %.0f s (at most %d a minute)'
            % (r.log_lines, r.log_bytes, r.attack_seconds,
               EMFILE_LOG_LINES_PER_MINUTE))

    # -- 9. amplification --

    def test_one_body_of_a_million_notifications(self):
        # One signed body of 3 MB holding 10^6 notifications ({}). The
        # default --max-body (1 MiB) would refuse it unread: this whr
        # takes bodies up to 4 MiB, everything else default. Good POSTs
        # are measured for 10 s from the moment it is sent, through the
        # handling that follows its answer.
        self.withstand('one body of 10^6 notifications (3 MB)', 'amplify',
                       ['--notifications', '1000000'], duration=10,
                       server_args=['--max-body', '4MiB'])


if __name__ == '__main__':
    w.main()
