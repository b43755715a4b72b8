"""Hostile traffic against a running whr, and what it does to whr
(test_hostile.py, issue 13).

Two halves:

- the attackers: this file run as a program, in a process of its own so
  that its work never slows the measurements (the good client, the
  sampling of whr) through Python's lock,

      python3 attack.py KIND PORT [--connections N] [--addresses K] ...

  opens its connections from 127.0.0.2 onwards (K addresses, the
  connections spread evenly over them), loopback only, and runs until
  SIGTERM or --duration; then it closes every socket and prints one JSON
  line of what it did. KINDs: pipeline, partial, idle, slowloris,
  amplify (see ATTACKS).

- the measurements, imported by the tests: Siege starts an attacker
  against a Server, sends a good signed POST from 127.0.0.1 every 100 ms
  meanwhile (a new connection and a new Id each time), samples whr's RSS
  and descriptors every 20 ms, its CPU time and its log, then watches
  RSS for 10 s after the attack. Result holds the figures.
"""

import argparse
import collections
import errno
import hashlib
import heapq
import hmac
import itertools
import json
import math
import os
import re
import resource
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

if __package__:
    from .bodies import delivery, sign
    from .environment import JSON_TYPE, WEBHOOK
    from .http import Closed, Connection, IP_BIND_ADDRESS_NO_PORT
else:   # run as a program
    JSON_TYPE = 'application/json; charset=utf-8'
    WEBHOOK = '/api/webhooks/incoming/custom'
    IP_BIND_ADDRESS_NO_PORT = getattr(socket, 'IP_BIND_ADDRESS_NO_PORT', 24)

GOOD_ADDRESS = '127.0.0.1'
MIB = 1024 * 1024


def attacker_address(i):
    """The i-th attacker address: 127.0.0.2, 127.0.0.3, ..."""
    n = i + 2
    return '127.0.%d.%d' % (n // 256, n % 256)


def raise_nofile():
    """Raise our soft RLIMIT_NOFILE to the hard limit (root may not raise
    the hard one in every sandbox)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---- what /proc says of a process -----------------------------------------

def rss_bytes(pid):
    """VmRSS of @pid in bytes, or None once it is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    """utime + stime of @pid, in seconds."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    ticks = os.sysconf('SC_CLK_TCK')
    return (int(fields[11]) + int(fields[12])) / ticks


def fd_count(pid):
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return 0


def nofile_limit(pid):
    """(soft, hard) RLIMIT_NOFILE of @pid."""
    with open('/proc/%d/limits' % pid) as f:
        for line in f:
            if line.startswith('Max open files'):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    return None


def set_nofile(pid, limit):
    """Set @pid's soft and hard RLIMIT_NOFILE to @limit."""
    subprocess.run(['prlimit', '--pid', str(pid),
                    '--nofile=%d:%d' % (limit, limit)], check=True)


# ---- the attackers (this file as a program) ---------------------------------

ATTACKS = {
    'pipeline': 'GET /healthz (or /metrics, every other connection) back '
                'to back on each connection, never '
                'reading an answer',
    'partial': 'a POST announcing 1,000,000 bytes, 940,000 of them sent, '
               'then nothing; half without ms-signature, half with one '
               'that cannot match',
    'idle': 'connect and send nothing',
    'slowloris': 'a request head sent one byte a second, never ending',
    'amplify': 'one signed POST of 3 MB holding 10^6 notifications',
}


class Slot:
    """One attacker connection, reopened when the server closes it (after
    --reconnect seconds; never without it)."""

    __slots__ = ('address', 'sock', 'state', 'at', 'sent', 'payload',
                 'got')

    def __init__(self, address):
        self.address = address
        self.sock = None
        self.state = 'new'          # new connecting open waiting
        self.at = 0.0               # when to (re)connect
        self.sent = 0
        self.payload = None
        self.got = b''


class Attacker:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.stats = {'kind': a.kind, 'connects': 0, 'connected': 0,
                      'closed_by_server': 0, 'connect_errors': 0,
                      'bytes_sent': 0, 'statuses': {}, 'max_open': 0}
        self.stop = False
        self.slots = [Slot(attacker_address(i % a.addresses))
                      for i in range(a.connections)]
        # Slots to (re)connect, a heap of (when, n, slot); slowloris'
        # next bytes, as (when, slot, its socket then), in time order
        # (each is a second after the one before).
        self.order = itertools.count()
        self.to_connect = []
        for slot in self.slots:
            self.later(slot, 0.0)
        self.drips = collections.deque()
        self.open = 0
        # Every other connection asks for /metrics: its answers (4 KB)
        # fill the kernel's buffers within a second, so that what whr
        # does once it cannot write shows at once, on any machine.
        self.pipeline_chunks = [
            b'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % path * 2000
            for path in (b'/healthz', b'/metrics')]
        self.partial_body = b'{"Id": "' + b'x' * (a.body_bytes - 8)

    # -- connections --

    def later(self, slot, when):
        slot.state, slot.at = 'new', when
        heapq.heappush(self.to_connect, (when, next(self.order), slot))

    def connect(self, slot, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        if self.a.kind == 'pipeline':
            # A small window: answers back up in whr at once.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.bind((slot.address, 0))
            rc = s.connect_ex(('127.0.0.1', self.a.port))
        except OSError:
            s.close()
            self.stats['connect_errors'] += 1
            self.later(slot, now + 1.0)
            return
        self.stats['connects'] += 1
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.stats['connect_errors'] += 1
            self.later(slot, now + 1.0)
            return
        slot.sock = s
        slot.state = 'connecting'
        slot.sent = 0
        slot.got = b''
        self.sel.register(s, selectors.EVENT_WRITE, slot)

    def lost(self, slot, now, by_server=True):
        if slot.sock is not None:
            try:
                self.sel.unregister(slot.sock)
            except (KeyError, ValueError):
                pass
            slot.sock.close()
            slot.sock = None
        if slot.state in ('open', 'waiting'):
            self.open -= 1
            if by_server:
                self.stats['closed_by_server'] += 1
        elif by_server:
            self.stats['connect_errors'] += 1
        if self.a.reconnect is not None:
            self.later(slot, now + self.a.reconnect)
        else:
            slot.state, slot.at = 'done', math.inf

    def established(self, slot, now):
        err = slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.lost(slot, now)
            return
        slot.state = 'open'
        self.open += 1
        self.stats['connected'] += 1
        self.stats['max_open'] = max(self.stats['max_open'], self.open)
        kind = self.a.kind
        if kind == 'pipeline':
            slot.payload = memoryview(
                self.pipeline_chunks[self.slots.index(slot) % 2])
            return                      # stays registered for writing
        if kind == 'partial':
            headers = [b'POST ' + WEBHOOK.encode() + b' HTTP/1.1',
                       b'Host: 127.0.0.1',
                       b'Content-Type: ' + JSON_TYPE.encode(),
                       b'Content-Length: %d' % self.a.announce]
            if self.stats['connected'] % 2:
                headers.append(b'ms-signature: sha256=' +
                               os.urandom(32).hex().upper().encode())
            slot.payload = memoryview(b'\r\n'.join(headers) + b'\r\n\r\n' +
                                      self.partial_body)
            return
        self.sel.modify(slot.sock, selectors.EVENT_READ, slot)
        if kind == 'slowloris':
            slot.payload = (b'POST ' + WEBHOOK.encode() + b' HTTP/1.1\r\n'
                            b'Host: 127.0.0.1\r\nX-Slow: ')
            self.drips.append((now, slot, slot.sock))

    # -- traffic --

    def send(self, slot, data, now):
        """Send what of @data the socket takes now, counted: whether it
        took some (not when it would block, nor when the connection was
        lost, and dropped)."""
        try:
            n = slot.sock.send(data)
        except BlockingIOError:
            return False
        except OSError:
            self.lost(slot, now)
            return False
        slot.sent += n
        self.stats['bytes_sent'] += n
        return True

    def write(self, slot, now):
        if self.a.kind == 'pipeline':
            # Whole requests, back to back: go on from where the last
            # send stopped, so none is cut in two.
            self.send(slot, slot.payload[slot.sent % len(slot.payload):], now)
            return
        if not self.send(slot, slot.payload[slot.sent:slot.sent + 262144],
                         now):
            return
        if slot.sent >= len(slot.payload):
            # The whole 0.94 MB is out: now wait, reading what comes.
            slot.state = 'waiting'
            self.sel.modify(slot.sock, selectors.EVENT_READ, slot)
        elif self.a.kind == 'partial':
            # Read answers too (a refusal before the body is read).
            self.sel.modify(slot.sock, selectors.EVENT_READ |
                            selectors.EVENT_WRITE, slot)

    def read(self, slot, now):
        try:
            data = slot.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if not data:
            self.note_status(slot)
            self.lost(slot, now)
            return
        if len(slot.got) < 64:
            slot.got += data[:64]

    def note_status(self, slot):
        m = re.match(rb'HTTP/1\.[01] (\d{3})', slot.got)
        key = m.group(1).decode() if m else ('none' if not slot.got
                                            else 'other')
        self.stats['statuses'][key] = self.stats['statuses'].get(key, 0) + 1

    def drip(self, now):
        """slowloris: one byte a second on each open connection."""
        while self.drips and self.drips[0][0] <= now:
            at, slot, sock = self.drips.popleft()
            if slot.sock is not sock or slot.state != 'open':
                continue                # closed since
            self.drips.append((at + 1.0, slot, sock))
            i = slot.sent
            byte = (slot.payload[i:i + 1] if i < len(slot.payload)
                    else b'a')
            self.send(slot, byte, now)

    def run(self):
        deadline = time.monotonic() + self.a.duration
        # Connections open at --connect-rate per second at most, so that
        # a burst of SYNs does not overflow the listen queue by itself.
        interval = 1.0 / self.a.connect_rate
        next_connect = time.monotonic()
        while not self.stop:
            now = time.monotonic()
            if now >= deadline:
                break
            while (self.to_connect and next_connect <= now and
                   self.to_connect[0][0] <= now):
                self.connect(heapq.heappop(self.to_connect)[2], now)
                next_connect = max(next_connect + interval, now - 1)
            if self.a.kind == 'slowloris':
                self.drip(now)
            for key, events in self.sel.select(timeout=0.02):
                slot = key.data
                if slot.sock is None:
                    continue
                if slot.state == 'connecting':
                    if events & selectors.EVENT_WRITE:
                        self.established(slot, now)
                    continue
                if events & selectors.EVENT_READ:
                    self.read(slot, now)
                if slot.sock is not None and events & selectors.EVENT_WRITE:
                    self.write(slot, now)
        for slot in self.slots:
            if slot.sock is not None:
                slot.sock.close()
                slot.sock = None
        self.stats['open_at_end'] = self.open
        return self.stats


def amplify(a):
    """One signed body of 10^6 notifications ({}), 3 MB; wait for the
    answer."""
    secret = os.environ['WHR_ATTACK_SECRET']
    did = os.urandom(16).hex()
    body = (b'{"Id": "%s", "Attempt": 1, "Properties": {}, '
            b'"Notifications": [' % did.encode() +
            b','.join([b'{}'] * a.notifications) + b']}')
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().upper()
    head = ('POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n'
            'ms-signature: sha256=%s\r\nContent-Length: %d\r\n\r\n'
            % (WEBHOOK, JSON_TYPE, mac, len(body))).encode()
    stats = {'kind': 'amplify', 'bytes': len(body), 'id': did,
             'notifications': a.notifications}
    start = time.monotonic()
    s = socket.socket()
    s.settimeout(a.duration)
    try:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((attacker_address(0), 0))
        s.connect(('127.0.0.1', a.port))
    except OSError as e:
        s.close()
        stats['error'] = 'cannot connect: %s' % e
        return stats
    # The answer may come before the body is all sent (a refusal from
    # the headers, or once too many notifications were read), and the
    # connection close under the sender: read it meanwhile.
    got = []

    def read():
        data = b''
        try:
            while b'\r\n' not in data:
                more = s.recv(4096)
                if not more:
                    break
                data += more
        except OSError as e:
            stats['read_error'] = str(e)
        got.append(data)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        s.sendall(head + body)
    except OSError as e:
        stats['send_error'] = str(e)
    reader.join(a.duration)
    s.close()
    m = re.match(rb'HTTP/1\.[01] (\d{3})', got[0] if got else b'')
    stats['status'] = int(m.group(1)) if m else None
    stats['seconds'] = round(time.monotonic() - start, 3)
    return stats


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('kind', choices=sorted(ATTACKS))
    p.add_argument('port', type=int)
    p.add_argument('--connections', type=int, default=1)
    p.add_argument('--addresses', type=int, default=1)
    p.add_argument('--duration', type=float, default=10)
    p.add_argument('--reconnect', type=float, default=None,
                   help='reopen a connection the server closed after this '
                   'many seconds (default: never)')
    p.add_argument('--connect-rate', type=float, default=2000)
    p.add_argument('--announce', type=int, default=1000000)
    p.add_argument('--body-bytes', type=int, default=940000)
    p.add_argument('--notifications', type=int, default=1000000)
    a = p.parse_args()
    raise_nofile()
    if a.kind == 'amplify':
        stats = amplify(a)
    else:
        attacker = Attacker(a)

        def on_term(signum, frame):
            attacker.stop = True
        signal.signal(signal.SIGTERM, on_term)
        stats = attacker.run()
    sys.stdout.write(json.dumps(stats) + '\n')
    sys.stdout.flush()


# ---- the measurements (imported) --------------------------------------------

class Monitor(threading.Thread):
    """Samples whr's RSS and descriptors every 20 ms; sets @tripped (and
    says why) when RSS passes @rss_cap or the log passes @log_cap bytes,
    so that the attack stops before it harms the machine."""

    def __init__(self, srv, rss_cap, log_cap):
        super().__init__(daemon=True)
        self.srv, self.pid = srv, srv.pid
        self.rss_cap, self.log_cap = rss_cap, log_cap
        self.peak = 0
        self.max_fds = 0
        self.tripped = threading.Event()
        self.why = None
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            rss = rss_bytes(self.pid)
            if rss is None:
                break
            self.peak = max(self.peak, rss)
            self.max_fds = max(self.max_fds, fd_count(self.pid))
            if rss > self.rss_cap and not self.tripped.is_set():
                self.why = 'RSS passed %d MiB' % (self.rss_cap // MIB)
                self.tripped.set()
            try:
                log_size = os.path.getsize(self.srv.log_path)
            except OSError:
                log_size = 0
            if log_size > self.log_cap and not self.tripped.is_set():
                self.why = 'the log passed %d MiB' % (self.log_cap // MIB)
                self.tripped.set()
            self.done.wait(0.02)

    def finish(self):
        self.done.set()
        self.join()


class GoodClient(threading.Thread):
    """A good signed POST from 127.0.0.1 every 100 ms, each on a new
    connection with a new Id, each waited for up to @cap seconds; every
    one sent is in @results as (id, status or None, seconds)."""

    def __init__(self, port, secret, cap=5.0, period=0.1):
        super().__init__(daemon=True)
        self.port, self.secret, self.cap = port, secret, cap
        self.period = period
        self.results = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.inflight = []

    def one(self):
        did = os.urandom(16).hex()
        body = delivery(id=did)
        headers = [('Content-Type', JSON_TYPE),
                   ('ms-signature', sign(self.secret, body))]
        start = time.monotonic()
        status = None
        try:
            with Connection(self.port, timeout=self.cap,
                            source=GOOD_ADDRESS) as c:
                c.sock.settimeout(self.cap)
                c.timeout = self.cap
                r = c.request('POST', WEBHOOK, body, headers)
                status = r.status
        except (OSError, Closed):
            pass
        took = time.monotonic() - start
        with self.lock:
            self.results.append((did, status, min(took, self.cap)
                                 if status is not None else self.cap))

    def run(self):
        next_at = time.monotonic()
        while not self.stop.is_set():
            t = threading.Thread(target=self.one, daemon=True)
            t.start()
            self.inflight.append(t)
            self.inflight = [x for x in self.inflight if x.is_alive()]
            next_at += self.period
            self.stop.wait(max(0, next_at - time.monotonic()))

    def finish(self):
        self.stop.set()
        self.join()
        for t in self.inflight:
            t.join(self.cap + 1)


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    k = max(0, math.ceil(p / 100.0 * len(v)) - 1)
    return v[k]


class Result:
    """What one attack did to whr."""

    def __init__(self, name):
        self.name = name
        self.rss_before = 0
        self.peak_rss = 0
        self.rss_after = 0
        self.cut_short = None
        self.good = []              # (id, status, seconds)
        self.cpu_percent = 0.0
        self.attack_seconds = 0.0
        self.log_lines = 0          # lines other than the good requests'
        self.log_bytes = 0
        self.max_fds = 0
        self.attacker = {}
        self.missing = []           # acknowledged, not in the inbox
        self.during_error = None
        self.inbox_bytes = 0
        self.failures = []
        self.notes = []

    @property
    def latencies(self):
        return [t for _, _, t in self.good]

    @property
    def not_ok(self):
        return [(s, t) for _, s, t in self.good if s != 200 or t > 1.0]

    def line(self):
        lat = self.latencies
        answered = sum(1 for _, s, _ in self.good if s is not None)
        ok = sum(1 for _, s, t in self.good if s == 200 and t <= 1.0)
        text = ('%s: peak RSS %.1f MiB%s, RSS 10 s after %.1f MiB (before '
                '%.1f MiB); good POSTs: %d sent, %d answered, %d 200 within '
                '1 s, latency max %.3f s p99 %.3f s; whr CPU %.0f %% of a '
                'core over %.1f s; log +%d lines (%d bytes) besides the good '
                'requests\'; max %d descriptors; inbox %.1f MiB; attacker %s'
                % (self.name, self.peak_rss / MIB,
                   ' (attack cut short: %s)' % self.cut_short
                   if self.cut_short else '',
                   self.rss_after / MIB, self.rss_before / MIB,
                   len(self.good), answered, ok, max(lat or [0]),
                   percentile(lat, 99), self.cpu_percent,
                   self.attack_seconds, self.log_lines, self.log_bytes,
                   self.max_fds, self.inbox_bytes / MIB,
                   json.dumps(self.attacker, sort_keys=True)))
        for n in self.notes:
            text += '; ' + n
        return text


_GOOD_REQUEST = re.compile(r'request method=.*remote=127\.0\.0\.1[:\s]')


class Siege:
    """One attack on a running Server @srv (whose inbox is in @data),
    with the good client and the measurements around it.

        r = Siege(srv, data, 'idle', ['--connections', '2000'],
                  duration=10).run()

    @during(siege), if given, runs once the attacker has started (it may
    add to self.result.notes). @attack_env: extra environment of the
    attacker."""

    AFTER = 10.0

    def __init__(self, srv, data, kind, args=(), duration=10.0,
                 secret=None, name=None, during=None, attack_env=None,
                 rss_cap=1536 * MIB, log_cap=256 * MIB):
        self.srv, self.data, self.kind = srv, data, kind
        self.args = list(args)
        self.duration = duration
        self.secret = secret
        self.during = during
        self.attack_env = attack_env or {}
        self.rss_cap, self.log_cap = rss_cap, log_cap
        self.result = Result(name or kind)
        self.proc = None

    def start_attacker(self):
        env = dict(os.environ, **self.attack_env)
        if self.secret is not None:
            env['WHR_ATTACK_SECRET'] = self.secret
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), self.kind,
             str(self.srv.port), '--duration', str(self.duration + 5),
             *self.args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)

    def stop_attacker(self):
        """SIGTERM, then SIGKILL to its group after 10 s; returns its
        report."""
        p = self.proc
        if p is None:
            return {}
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
        self.proc = None
        try:
            return json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {'error': (err or out).decode('utf-8', 'replace')[-500:]}

    def kill_attacker(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def run(self):
        r = self.result
        pid = self.srv.pid
        raise_nofile()
        r.rss_before = rss_bytes(pid)
        monitor = Monitor(self.srv, self.rss_cap, self.log_cap)
        good = GoodClient(self.srv.port, self.secret)
        log_mark = self.srv.mark()
        try:
            monitor.start()
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            self.start_attacker()
            good.start()
            during = None
            if self.during is not None:
                during = threading.Thread(target=self.run_during,
                                          daemon=True)
                during.start()
            deadline = t0 + self.duration
            while time.monotonic() < deadline:
                if monitor.tripped.is_set():
                    r.cut_short = monitor.why
                    break
                if not self.srv.running():
                    r.cut_short = 'whr exited'
                    break
                time.sleep(0.02)
            # The end of the attack: no good POST is sent after it (those
            # under way are waited for below, their time counted whole).
            good.stop.set()
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            r.attack_seconds = t1 - t0
            r.cpu_percent = 100.0 * (cpu1 - cpu0) / (t1 - t0)
            log = self.srv.log_bytes()[log_mark:].decode('utf-8', 'replace')
            others = [l for l in log.splitlines()
                      if not _GOOD_REQUEST.search(l)]
            r.log_lines = len(others)
            r.log_bytes = sum(len(l) + 1 for l in others)
            if during is not None:
                during.join(10)
            r.attacker = self.stop_attacker()
            good.finish()
            # Ten seconds after the attack.
            end = time.monotonic() + self.AFTER
            while time.monotonic() < end and self.srv.running():
                time.sleep(0.1)
            r.rss_after = rss_bytes(pid) or 0
            monitor.finish()
            r.peak_rss = monitor.peak
            r.max_fds = monitor.max_fds
            r.good = list(good.results)
            r.missing = self.missing_from_inbox()
            r.inbox_bytes = sum(
                os.path.getsize(os.path.join(self.data, f))
                for f in ('inbox.sqlite', 'inbox.sqlite-wal')
                if os.path.exists(os.path.join(self.data, f)))
        finally:
            good.stop.set()
            monitor.done.set()
            self.kill_attacker()
        return r

    def run_during(self):
        try:
            self.during(self)
        except Exception as e:      # said in the figures, and fails
            self.result.notes.append('during the attack: %r' % e)
            self.result.during_error = e

    def acknowledged(self):
        ids = [i for i, s, _ in self.result.good if s == 200]
        other = self.result.attacker.get('id')
        if other and self.result.attacker.get('status') == 200:
            ids.append(other)
        return ids

    def missing_from_inbox(self):
        ids = self.acknowledged()
        if not ids:
            return []
        db = sqlite3.connect('file:%s/inbox.sqlite?mode=ro' % self.data,
                             uri=True, timeout=30)
        try:
            found = set()
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                found |= {row[0] for row in db.execute(
                    'SELECT delivery_id FROM deliveries WHERE delivery_id '
                    'IN (%s)' % ','.join('?' * len(part)), part)}
        finally:
            db.close()
        return [i for i in ids if i not in found]


if __name__ == '__main__':
    main()
