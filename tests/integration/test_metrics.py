"""Prometheus /metrics (issue 14): the page parsed as the text format
0.0.4 (a parser of our own, below), its counters after known traffic
(deliveries stored and resent, each reason of a signature failure, ids
without a secret, echo checks, handler runs and their outcomes, commits),
its gauges (open, dead, the oldest open one's age), label sets that made
up ids and Actions do not grow, and --admin-listen."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from whrtest import WEBHOOK, V1_SECRET  # noqa: E402

TENANT2 = w.secret('metrics-tenant2')
ENV = {'MS_WebHookReceiverSecret_Custom': '%s, tenant2=%s'
                                          % (V1_SECRET, TENANT2)}
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'


# ---- the text format, 0.0.4 ------------------------------------------------

_NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
_SAMPLE = re.compile(r'^(%s)(?:\{(.*)\})? (\S+)$' % _NAME)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')
_ESCAPES = {'\\': '\\', '"': '"', 'n': '\n'}


def _labels(text):
    """name="value",... with \\\\, \\" and \\n escaped."""
    out = {}
    i = 0
    while i < len(text):
        m = _LABEL.match(text, i)
        if m is None:
            raise ValueError('bad label at %r' % text[i:])
        i = m.end()
        value = []
        while text[i] != '"':
            if text[i] == '\\':
                value.append(_ESCAPES[text[i + 1]])
                i += 2
            else:
                value.append(text[i])
                i += 1
        i += 1
        if m.group(1) in out:
            raise ValueError('label %s twice' % m.group(1))
        out[m.group(1)] = ''.join(value)
        if i < len(text):
            if text[i] != ',':
                raise ValueError('no comma at %r' % text[i:])
            i += 1
    return out


class Page:
    """A parsed /metrics page: every family typed once and described,
    every sample of a typed family, no series twice, histograms whole
    (cumulative buckets up to +Inf, which equals _count)."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.helps = {}
        self.samples = {}      # (name, frozenset of label items) -> value
        if not text.endswith('\n'):
            raise ValueError('the page does not end with a line end')
        for line in text[:-1].split('\n'):
            if line.startswith('# HELP '):
                name, _, help_text = line[7:].partition(' ')
                self.helps[name] = help_text
            elif line.startswith('# TYPE '):
                name, _, kind = line[7:].partition(' ')
                if name in self.types:
                    raise ValueError('%s typed twice' % name)
                if kind not in ('counter', 'gauge', 'histogram',
                                'summary', 'untyped'):
                    raise ValueError('%s: type %r' % (name, kind))
                self.types[name] = kind
            elif line.startswith('#'):
                continue
            else:
                m = _SAMPLE.match(line)
                if m is None:
                    raise ValueError('not a sample line: %r' % line)
                name, labels, value = m.groups()
                if self.family(name) not in self.types:
                    raise ValueError('%s has no TYPE line before it' % name)
                key = (name, frozenset(_labels(labels or '').items()))
                if key in self.samples:
                    raise ValueError('series twice: %r' % line)
                self.samples[key] = float(value)
        for name in self.types:
            if name not in self.helps:
                raise ValueError('%s has no HELP line' % name)
            if self.types[name] == 'histogram':
                self._check_histogram(name)

    def family(self, name):
        for suffix in ('_bucket', '_sum', '_count'):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and self.types.get(base) == 'histogram':
                return base
        return name

    def _check_histogram(self, name):
        groups = {}
        for (n, labels), v in self.samples.items():
            if n == name + '_bucket':
                rest = frozenset(kv for kv in labels if kv[0] != 'le')
                le = dict(labels)['le']
                groups.setdefault(rest, []).append(
                    (float('inf') if le == '+Inf' else float(le), v))
        for rest, buckets in groups.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            if counts != sorted(counts):
                raise ValueError('%s%r: buckets not cumulative'
                                 % (name, dict(rest)))
            if buckets[-1][0] != float('inf'):
                raise ValueError('%s%r: no +Inf bucket' % (name, dict(rest)))
            if self.samples.get((name + '_count', rest)) != counts[-1]:
                raise ValueError('%s%r: +Inf is not _count'
                                 % (name, dict(rest)))
            if (name + '_sum', rest) not in self.samples:
                raise ValueError('%s%r: no _sum' % (name, dict(rest)))

    def value(self, name, **labels):
        """A series' value; 0 when the page does not show it (counters
        not moved yet are left out)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def handler_duration(self, part, handler, **labels):
        """A series of whr_handler_duration_seconds (@part: count, sum
        or bucket) for @handler."""
        return self.value('whr_handler_duration_seconds_' + part,
                          handler=handler, **labels)

    def series(self, name):
        """The label sets of @name's series."""
        return [dict(l) for n, l in self.samples if n == name]


def scrape(port, path='/metrics'):
    r = w.get(port, path)
    if r.status != 200:
        raise AssertionError('GET %s: %r' % (path, r))
    if r.header('Content-Type') != CONTENT_TYPE:
        raise AssertionError('Content-Type: %r' % r.header('Content-Type'))
    return Page(r.body.decode('utf-8'))


def wait_for(port, check, timeout=5, what='the metrics'):
    """Scrape until @check(page) is true (the inbox's gauges are set once
    a second)."""
    deadline = time.monotonic() + w.slow(timeout)
    while True:
        page = scrape(port)
        if check(page):
            return page
        if time.monotonic() > deadline:
            raise AssertionError('%s never came within %.0f s:\n%s'
                                 % (what, w.slow(timeout), page.text))
        time.sleep(0.1)


def post_action(port, action, secret=V1_SECRET):
    body = w.delivery(notifications=[{'Action': action}])
    r = w.post(port, body, secret)
    if r.status != 200:
        raise AssertionError('%s: %r' % (action, r))
    return body


# ---- the tests --------------------------------------------------------------

class TheParser(unittest.TestCase):
    """The parser refuses what the format does not allow."""

    def test_refusals(self):
        good = ('# HELP x_total X.\n# TYPE x_total counter\n'
                'x_total{a="q\\"\\\\\\n"} 1\n')
        page = Page(good)
        self.assertEqual(page.value('x_total', a='q"\\\n'), 1)
        for bad in ('x_total 1\n',                          # no TYPE
                    good + 'x_total{a="q\\"\\\\\\n"} 2\n',  # twice
                    good.rstrip('\n'),                      # no line end
                    '# TYPE x counter\nx 1\n',              # no HELP
                    '# HELP h H.\n# TYPE h histogram\n'
                    'h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n'
                    'h_sum 1\nh_count 1\n'):                # not cumulative
            with self.assertRaises(ValueError, msg=bad):
                Page(bad)


class Counters(unittest.TestCase):
    def test_after_known_traffic(self):
        with w.Server(env=ENV) as srv:
            before = scrape(srv.port)
            self.assertEqual(before.types['whr_requests_total'], 'counter')
            self.assertEqual(before.value('whr_build_info',
                                          version=before.series(
                                              'whr_build_info')[0]
                                          ['version']), 1)
            body = w.delivery()
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            self.assertEqual(w.post(srv.port, body, V1_SECRET).status, 200)
            # The id in the URL's case; counted under its configured id.
            r = w.post(srv.port, w.delivery(), TENANT2,
                       path=WEBHOOK + '/TENANT2')
            self.assertEqual(r.status, 200, r)
            # Each reason of a signature failure.
            self.assertEqual(w.post(srv.port, body).status, 400)
            r = w.request('POST', WEBHOOK, body,
                          [('Content-Type', w.JSON_TYPE),
                           ('ms-signature', w.sign(V1_SECRET, body)),
                           ('ms-signature', w.sign(V1_SECRET, body))],
                          port=srv.port)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(w.post(srv.port, body,
                                    signature='md5=00').status, 400)
            self.assertEqual(w.post(srv.port, body,
                                    signature='sha256=XYZ').status, 400)
            self.assertEqual(w.post(srv.port, body, TENANT2).status, 400)
            # Ids without a secret.
            self.assertEqual(w.post(srv.port, body, V1_SECRET,
                                    path=WEBHOOK + '/nobody').status, 404)
            self.assertEqual(w.get(srv.port, WEBHOOK + '/nobody2?echo=x')
                             .status, 404)
            # The registration's echo check.
            r = w.get(srv.port, WEBHOOK + '?echo=hello')
            self.assertEqual((r.status, r.body), (200, b'hello'))
            # Not the webhook path: not counted.
            self.assertEqual(w.get(srv.port, '/healthz').status, 200)
            self.assertEqual(w.get(srv.port, '/nowhere').status, 404)

            page = scrape(srv.port)
            req = 'whr_requests_total'
            self.assertEqual(page.value(req, receiver='', status='200'), 3)
            self.assertEqual(page.value(req, receiver='', status='400'), 5)
            self.assertEqual(page.value(req, receiver='tenant2',
                                        status='200'), 1)
            self.assertEqual(page.value(req, receiver='unknown',
                                        status='404'), 2)
            self.assertEqual(sorted((s['receiver'], s['status'])
                                    for s in page.series(req)),
                             [('', '200'), ('', '400'),
                              ('tenant2', '200'), ('unknown', '404')])
            fail = 'whr_signature_failures_total'
            self.assertEqual(page.value(fail, reason='missing'), 1)
            self.assertEqual(page.value(fail, reason='duplicate'), 1)
            self.assertEqual(page.value(fail, reason='malformed'), 2)
            self.assertEqual(page.value(fail, reason='mismatch'), 1)
            dlv = 'whr_deliveries_total'
            self.assertEqual(page.value(dlv, receiver='', result='stored'),
                             1)
            self.assertEqual(page.value(dlv, receiver='',
                                        result='duplicate'), 1)
            self.assertEqual(page.value(dlv, receiver='tenant2',
                                        result='stored'), 1)
            self.assertEqual(page.value('whr_echo_checks_total'), 1)
            # Two commits at least: the three deliveries stored.
            self.assertGreaterEqual(
                page.value('whr_commit_batch_size_count')
                - before.value('whr_commit_batch_size_count'), 1)
            self.assertGreater(page.value('whr_commit_sync_seconds_count'),
                               before.value('whr_commit_sync_seconds_count'))
            self.assertEqual(page.value('whr_commit_sync_seconds_count'),
                             page.value('whr_commit_batch_size_count'))
            # Nothing secret, no signature, no body, no made-up id.
            for text in (V1_SECRET, TENANT2, 'nobody', 'hello',
                         body.decode()[:20]):
                self.assertNotIn(text, page.text)
            for mac in w.SENT_MACS:
                self.assertNotIn(mac, page.text.lower())

    def test_made_up_ids_do_not_grow_the_series(self):
        with w.Server(env=ENV) as srv:
            body = w.delivery()
            for i in range(3):
                w.post(srv.port, body, V1_SECRET,
                       path=WEBHOOK + '/made-up-%d' % i)
            first = scrape(srv.port)
            for i in range(3, 200):
                r = w.post(srv.port, body, V1_SECRET,
                           path=WEBHOOK + '/made-up-%d' % i)
                self.assertEqual(r.status, 404, r)
            # From the head and after the body alike.
            for i in range(200, 210):
                r = w.get(srv.port, WEBHOOK + '/made-up-%d?echo=x' % i)
                self.assertEqual(r.status, 404, r)
            page = scrape(srv.port)
            self.assertEqual(sorted(page.samples), sorted(first.samples))
            self.assertEqual(page.value('whr_requests_total',
                                        receiver='unknown', status='404'),
                             210)
            self.assertNotIn('made-up', page.text)

    def test_get_only(self):
        with w.Server(env=ENV) as srv:
            for method in ('POST', 'HEAD', 'DELETE'):
                r = w.request(method, '/metrics', port=srv.port)
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.header('Allow'), 'GET', r)


class Handlers(unittest.TestCase):
    def test_runs_outcomes_and_gauges(self):
        # Retries far apart: the RetryMe notification stays open.
        with w.Server(['--retry-delay', '1h', '--workers', '2'], env=ENV,
                      program='recorder', record=True) as srv:
            before = scrape(srv.port)
            post_action(srv.port, 'a1')
            # Handler "all" and "all2" run for every Action: the made-up
            # ones count as "other", never as series of their own.
            for i in range(30):
                post_action(srv.port, 'MadeUp%d' % i)
            post_action(srv.port, 'CourseStarted')
            post_action(srv.port, 'RejectMe')
            post_action(srv.port, 'RetryMe')
            # a1: a1, all, all2; made-up and CourseStarted: all, all2;
            # RejectMe: reject, all, all2 (then dead); RetryMe: retry, all,
            # all2 (then waiting an hour to retry).
            srv.records(expect=3 + 60 + 2 + 3 + 3)
            runs = 'whr_handler_runs_total'
            page = wait_for(
                srv.port,
                lambda p: p.value('whr_dead_notifications') == 1 and
                p.value('whr_inbox_open_notifications') == 1,
                what='one dead, one open notification')
            self.assertEqual(page.value(runs, action='a1', handler='a1',
                                        outcome='done'), 1)
            self.assertEqual(page.value(runs, action='a1', handler='all',
                                        outcome='done'), 1)
            self.assertEqual(page.value(runs, action='other',
                                        handler='all', outcome='done'), 30)
            self.assertEqual(page.value(runs, action='other',
                                        handler='all2', outcome='done'), 30)
            self.assertEqual(page.value(runs, action='CourseStarted',
                                        handler='all2', outcome='done'), 1)
            self.assertEqual(page.value(runs, action='RejectMe',
                                        handler='reject',
                                        outcome='reject'), 1)
            self.assertEqual(page.value(runs, action='RetryMe',
                                        handler='retry', outcome='retry'),
                             1)
            self.assertNotIn('MadeUp', page.text)
            self.assertEqual(page.handler_duration('count', 'all'), 34)
            self.assertEqual(
                page.handler_duration('bucket', 'a1', le='+Inf'), 1)
            self.assertGreaterEqual(
                page.value('whr_commit_batch_size_count')
                - before.value('whr_commit_batch_size_count'), 2)
            self.assertGreater(
                page.value('whr_commit_batch_size_sum'),
                before.value('whr_commit_batch_size_sum'))
            # The retrying one is open: its age is shown.
            self.assertGreater(page.value('whr_inbox_oldest_open_seconds'),
                               0)

    def test_oldest_open_while_a_handler_is_slow(self):
        # Handler "all" sleeps 3 s on each notification.
        with w.Server(env=dict(ENV, WHR_RECORD_SLEEP_MS='3000'),
                      program='recorder', record=True) as srv:
            page = scrape(srv.port)
            self.assertEqual(page.value('whr_inbox_oldest_open_seconds'), 0)
            post_action(srv.port, 'a1')
            page = wait_for(
                srv.port,
                lambda p: p.value('whr_inbox_oldest_open_seconds') >= 1 and
                p.value('whr_inbox_open_notifications') == 1,
                what='an open notification a second old')
            self.assertEqual(page.types['whr_inbox_oldest_open_seconds'],
                             'gauge')
            page = wait_for(
                srv.port,
                lambda p: p.value('whr_inbox_open_notifications') == 0 and
                p.value('whr_inbox_oldest_open_seconds') == 0,
                timeout=10, what='no open notification')
            self.assertGreaterEqual(page.handler_duration('sum', 'all'), 3)
            self.assertEqual(page.handler_duration('bucket', 'all', le='1'),
                             0)


_ADMIN = re.compile(r'listening on (\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d+) '
                    r'\(admin')


class AdminListen(unittest.TestCase):
    def test_metrics_and_health_there_only(self):
        with w.Server(['--admin-listen', '127.0.0.1:0'], env=ENV) as srv:
            admin = int(_ADMIN.search(srv.log()).group(2))
            self.assertNotEqual(admin, srv.port)
            self.assertEqual(w.post(srv.port, w.delivery(),
                                    V1_SECRET).status, 200)
            page = scrape(admin)
            self.assertEqual(page.value('whr_requests_total', receiver='',
                                        status='200'), 1)
            # Not on the webhook's address any more; health still.
            r = w.get(srv.port, '/metrics')
            self.assertEqual(r.status, 404, r)
            for path in ('/healthz', '/readyz'):
                self.assertEqual(w.get(srv.port, path).status, 200, path)
                self.assertEqual(w.get(admin, path).status, 200, path)
            # The admin address serves nothing else.
            self.assertEqual(w.get(admin, WEBHOOK + '?echo=x').status, 404)
            r = w.post(admin, w.delivery(), V1_SECRET)
            self.assertEqual(r.status, 404, r)
            self.assertEqual(w.get(admin, '/nowhere').status, 404)
            # Requests there are no webhook requests.
            page = scrape(admin)
            self.assertEqual(page.value('whr_requests_total', receiver='',
                                        status='200'), 1)
            self.assertEqual(page.value('whr_requests_total',
                                        receiver='unknown', status='404'),
                             0)

    def test_a_bad_address_stops_start_up(self):
        rc, _, err = w.run_whr(['--admin-listen', '127.0.0.1'], env=ENV,
                               program='serve')
        self.assertEqual(rc, 2, err)
        self.assertIn('--admin-listen', err)


if __name__ == '__main__':
    w.main()
