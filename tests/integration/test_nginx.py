"""nginx in front of whr over TLS (issue 14, point 3): real nginx with
deploy/nginx/whr-site.conf and whr-locations.conf, changed only in ports
and paths, a throwaway CA and a certificate for 127.0.0.1 made here, and
a real whr behind it. Through HTTPS: the echo check, signed deliveries
on one kept-alive connection and chunked, each body reaching whr byte for
byte (`whr inbox show --format json`), X-Forwarded-For set by nginx and
not by the client, the size limit (1 MiB passes, one byte more is 413),
a bad signature (400), and /healthz, /readyz, /metrics not served.

`whr probe` and `whr send` speak HTTPS with a given CA (--cacert): they
run the echo check and deliveries; exact requests (keep-alive, chunked,
Expect, forged headers) come from Python's ssl module.

Needs nginx and openssl (scripts/install-deps --test); without them it
skips, except under CI=true, where that is a failure."""

import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
from toolstest import NginxProcess  # noqa: E402

SECRET = '0123456789abcdef0123456789abcdef-nginx'
SECRET2 = 'tenant2-secret-0123456789abcdef-nginx'
CI = os.environ.get('CI') == 'true'
MIB = 1024 * 1024


def nginx_path():
    return shutil.which('nginx') or (
        '/usr/sbin/nginx' if os.access('/usr/sbin/nginx', os.X_OK) else None)


def missing():
    if nginx_path() is None:
        return 'nginx is not installed (scripts/install-deps --test)'
    if shutil.which('openssl') is None:
        return 'openssl is not installed'
    return None


WHY_NOT = missing()


def deploy_file(*parts):
    root = os.environ.get('WHR_SOURCE_ROOT')
    if not root:
        raise RuntimeError('WHR_SOURCE_ROOT is not set (run through meson '
                           'test)')
    return os.path.join(root, 'deploy', *parts)


def replace_once(text, old, new):
    """The site file changed in one place: a file that no longer has
    @old fails the test instead of testing something else."""
    if text.count(old) != 1:
        raise AssertionError('whr-site.conf: %r found %d times'
                             % (old, text.count(old)))
    return text.replace(old, new)


class Nginx(NginxProcess):
    """nginx with whr-site.conf on 127.0.0.1:port, in front of whr on
    127.0.0.1:@upstream_port; and on 127.0.0.1:greedy_port a server of
    the test's own that includes whr-locations.conf and sends everything
    else to whr too (a site proxied whole): the snippet alone must keep
    whr's operational endpoints in."""

    def __init__(self, upstream_port):
        super().__init__()
        d = self.dir
        os.chmod(d, 0o755)     # nginx's workers run as nobody
        self.port = w.free_port()
        self.greedy_port = w.free_port()
        with open(deploy_file('nginx', 'whr-site.conf')) as f:
            site = f.read()
        for old, new in (
                ('listen 443 ssl;', 'listen 127.0.0.1:%d ssl;' % self.port),
                ('listen [::]:443 ssl;', ''),
                ('server 127.0.0.1:8080;',
                 'server 127.0.0.1:%d;' % upstream_port),
                ('/etc/ssl/certs/webhooks.example.com.fullchain.pem',
                 os.path.join(d, 'good.pem')),
                ('/etc/ssl/private/webhooks.example.com.key',
                 os.path.join(d, 'good.key')),
                ('/etc/nginx/snippets/whr-locations.conf',
                 deploy_file('nginx', 'whr-locations.conf'))):
            site = replace_once(site, old, new)
        with open(os.path.join(d, 'whr-site.conf'), 'w') as f:
            f.write(site)
        with open(os.path.join(d, 'greedy.conf'), 'w') as f:
            f.write('''server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/good.pem;
    ssl_certificate_key %s/good.key;
    include %s;
    location / {
        proxy_pass http://whr;
    }
}
''' % (self.greedy_port, d, d, deploy_file('nginx', 'whr-locations.conf')))
        self.start('''    access_log %s/access.log;
    include %s/whr-site.conf;
    include %s/greedy.conf;''' % (d, d, d), 'info',
                   (self.port, self.greedy_port), program=nginx_path())

    def url(self, path=w.WEBHOOK):
        return 'https://127.0.0.1:%d%s' % (self.port, path)

    def log(self):
        with open(self.error_log, errors='replace') as f:
            return f.read()


class TLSConnection(w.Connection):
    """whrtest's client connection (exact requests, exact answers) over
    TLS, checking nginx's certificate against the test's CA."""

    def __init__(self, port, cacert):
        super().__init__(port)
        ctx = ssl.create_default_context(cafile=cacert)
        self.sock = ctx.wrap_socket(self.sock, server_hostname='127.0.0.1')


def chunked(body, sizes):
    """@body in chunks of the given sizes (the last one takes the rest)."""
    out = b''
    i = 0
    for n in sizes:
        part = body[i:i + n]
        if part:
            out += b'%x\r\n%s\r\n' % (len(part), part)
        i += n
    if body[i:]:
        out += b'%x\r\n%s\r\n' % (len(body[i:]), body[i:])
    return out + b'0\r\n\r\n'


def sized_delivery(size, did):
    """A signed-to-be delivery body of exactly @size bytes."""
    base = w.delivery(id=did, properties={'pad': ''})
    pad = size - len(base)
    assert pad >= 0
    body = w.delivery(id=did, properties={'pad': 'x' * pad})
    assert len(body) == size, (len(body), size)
    return body


@unittest.skipIf(WHY_NOT is not None and not CI, WHY_NOT)
class ThroughNginx(unittest.TestCase):

    srv = None
    nginx = None

    @classmethod
    def setUpClass(cls):
        if WHY_NOT is not None:
            return      # CI=true: each test fails (setUp)
        cls.data = tempfile.TemporaryDirectory(prefix='whr-nginx-data-')
        cls.srv = w.Server(
            ['--data-dir', cls.data.name],
            env={'MS_WebHookReceiverSecret_Custom':
                 '%s, tenant2=%s' % (SECRET, SECRET2)})
        with w.cleaned_up_on_error(cls.srv, cls.data):
            cls.nginx = Nginx(cls.srv.port)

    @classmethod
    def tearDownClass(cls):
        if cls.srv is None:
            return
        try:
            cls.nginx.stop()
        finally:
            w.stop_and_clean(cls.srv, cls.data)

    def setUp(self):
        if WHY_NOT is not None:
            self.fail('CI=true and this machine cannot run the nginx '
                      'test: ' + WHY_NOT)

    # -- helpers --

    def connect(self, greedy=False):
        return TLSConnection(self.nginx.greedy_port if greedy else
                             self.nginx.port, self.nginx.cacert)

    def post(self, conn, body, secret=SECRET, path=w.WEBHOOK, headers=(),
             chunks=None):
        h = [('Content-Type', w.JSON_TYPE),
             ('ms-signature', w.sign(secret, body))] + list(headers)
        if chunks is None:
            return conn.request('POST', path, body, h)
        h.append(('Transfer-Encoding', 'chunked'))
        conn.send(w.build_request('POST', path, b'', h, length=False) +
                  chunked(body, chunks))
        return conn.read_response('POST')

    def stored(self, did, receiver=None):
        """The delivery as whr stored it (whr inbox show --format json)."""
        args = ['inbox', '--data-dir', self.data.name, '--format', 'json',
                'show', did]
        if receiver:
            args += ['--receiver', receiver]
        status, out, err = w.run_whr(args)
        self.assertEqual(status, 0, out + err)
        return json.loads(out)

    def assert_stored_exactly(self, did, body, receiver=None):
        d = self.stored(did, receiver)
        self.assertEqual(d['body'].encode('utf-8'), body)
        headers = {k.lower(): v for k, v in d['headers']}
        # nginx's view of the client, not what the client claimed
        self.assertEqual(headers.get('x-forwarded-for'), '127.0.0.1')
        self.assertEqual(headers.get('x-forwarded-proto'), 'https')
        self.assertNotIn('forwarded', headers)
        return d

    def whr_requests(self, since):
        """whr's request log lines after @since."""
        return [w.log_fields(l) for l in self.srv.lines(since)
                if ' request method=' in l]

    # -- tests --

    def test_probe_and_send_with_the_ca(self):
        # whr's own tools trust a CA given with --cacert.
        env = {'WHR_SECRET': SECRET}
        status, out, err = w.run_whr(['probe', self.nginx.url(), '--cacert',
                                      self.nginx.cacert], env=env)
        self.assertEqual(status, 0, out + err)
        self.assertIn('echo: pass: 200 OK', out)
        self.assertIn('delivery: pass: 200 OK', out)
        for sample, did in (('CourseEnrollment', 'nginx-send-1'),
                            ('CourseCompleted', 'nginx-send-2')):
            status, out, err = w.run_whr(
                ['send', self.nginx.url(), '--cacert', self.nginx.cacert,
                 '--sample', sample, '--id', did], env=env)
            self.assertEqual(status, 0, out + err)
            self.assertIn('delivered: Id %s' % did, out)
        status, out, err = w.run_whr(
            ['send', self.nginx.url(w.WEBHOOK + '/tenant2'), '--cacert',
             self.nginx.cacert, '--sample', 'CourseStarted', '--id',
             'nginx-send-t2'], env={'WHR_SECRET': SECRET2})
        self.assertEqual(status, 0, out + err)
        self.assertEqual(self.stored('nginx-send-t2', 'tenant2')['receiver'],
                         'tenant2')
        # without the CA, the certificate is refused
        status, out, err = w.run_whr(['probe', self.nginx.url()], env=env)
        self.assertEqual(status, 1, out + err)
        self.assertIn('certificate', out.lower())

    def test_echo(self):
        with self.connect() as c:
            r = c.request('GET', w.WEBHOOK + '?echo=0123abcdef')
            self.assertEqual((r.status, r.body), (200, b'0123abcdef'), r)
            self.assertTrue(r.header('Content-Type').startswith(
                'text/plain'), r)
            r = c.request('GET', w.WEBHOOK + '/TENANT2/?echo=x%20y')
            self.assertEqual((r.status, r.body), (200, b'x y'), r)
            r = c.request('GET', w.WEBHOOK + '/nosuch?echo=v')
            self.assertEqual(r.status, 404, r)

    def test_keep_alive_byte_for_byte(self):
        mark = self.srv.mark()
        sent = []
        with self.connect() as c:
            for i, crlf in enumerate((True, False, True)):
                did = 'nginx-keepalive-%d' % i
                body = w.delivery(id=did, crlf=crlf, notifications=[
                    {'Action': 'CourseCompleted',
                     'Course': {'Title': 'Sécurité incendie ✓ %d' % i}}])
                # a client's forgeries: nginx replaces them
                r = self.post(c, body, headers=[
                    ('X-Forwarded-For', '203.0.113.7'),
                    ('Forwarded', 'for=198.51.100.1')])
                self.assertEqual(r.status, 200, r)
                sent.append((did, body))
            self.assertFalse(c.is_closed_now())
        for did, body in sent:
            self.assert_stored_exactly(did, body)
        # nginx kept its connection to whr too (the upstream's keepalive)
        reqs = self.whr_requests(mark)
        self.assertEqual(len(reqs), 3, reqs)
        self.assertEqual(len({r['remote'] for r in reqs}), 1, reqs)

    def test_chunked_byte_for_byte(self):
        with self.connect() as c:
            for i, sizes in enumerate(((1, 2, 3, 500), (7,), (4096,))):
                did = 'nginx-chunked-%d' % i
                body = w.delivery(id=did, notifications=[
                    {'Action': 'CourseStarted', 'n': 'ü' * 300}])
                r = self.post(c, body, chunks=sizes)
                self.assertEqual(r.status, 200, r)
                self.assert_stored_exactly(did, body)

    def test_expect_continue(self):
        # The .NET sender waits for 100 Continue before the body.
        body = w.delivery(id='nginx-expect')
        with self.connect() as c:
            c.send(w.build_request('POST', w.WEBHOOK, b'', [
                ('Content-Type', w.JSON_TYPE),
                ('ms-signature', w.sign(SECRET, body)),
                ('Expect', '100-continue'),
                ('Content-Length', str(len(body)))]))
            r = c.read_response('POST', skip_continue=False)
            self.assertEqual(r.status, 100, r)
            c.send(body)
            r = c.read_response('POST')
            self.assertEqual(r.status, 200, r)
        self.assert_stored_exactly('nginx-expect', body)

    def test_size_limit_agrees_with_whr(self):
        mark = self.srv.mark()
        body = sized_delivery(MIB, 'nginx-1mib')
        with self.connect() as c:
            r = self.post(c, body)
            self.assertEqual(r.status, 200, r)
        self.assert_stored_exactly('nginx-1mib', body)
        big = sized_delivery(MIB + 1, 'nginx-1mib-and-1')
        with self.connect() as c:
            r = self.post(c, big)
            self.assertEqual(r.status, 413, r)
        # chunked, the size is known only as it streams: 413 all the same
        with self.connect() as c:
            r = self.post(c, big, chunks=(65536,) * 17)
            self.assertEqual(r.status, 413, r)
        stored = [r for r in self.whr_requests(mark) if r['status'] == '200']
        self.assertEqual([r['delivery'] for r in stored], ['nginx-1mib'])

    def test_bad_signature(self):
        body = w.delivery(id='nginx-bad')
        with self.connect() as c:
            r = self.post(c, body, secret=SECRET2)
            self.assertEqual(r.status, 400, r)
            # whr's own answer, passed through
            self.assertIn(b'ms-signature', r.body)
            r = c.request('POST', w.WEBHOOK, body,
                          [('Content-Type', w.JSON_TYPE)])
            self.assertEqual(r.status, 400, r)
        status, out, err = w.run_whr(['inbox', '--data-dir', self.data.name,
                                      'show', 'nginx-bad'])
        self.assertEqual(status, 1, out + err)

    def test_operational_endpoints_not_served(self):
        mark = self.srv.mark()
        paths = ('/healthz', '/readyz', '/metrics', '/readyz?x=1',
                 '//healthz', '/%68ealthz', '/healthz/', '/HEALTHZ',
                 '/api/webhooks/incoming/custom/../../../../readyz',
                 '/api/webhooks/incoming/custom/%2e%2e/%2e%2e/%2e%2e/'
                 '%2e%2e/metrics', '/', '/api/webhooks/incoming/customer')
        with self.connect() as c:
            for path in paths:
                r = c.request('GET', path)
                self.assertIn(r.status, (400, 404), (path, r))
        # none of them reached whr
        self.assertEqual(self.whr_requests(mark), [])
        # A server that sends everything else to whr: the snippet's exact
        # locations still keep these in; variants that are not these paths
        # reach whr, which has nothing there.
        with self.connect(greedy=True) as c:
            for path in paths[:5]:
                r = c.request('GET', path)
                self.assertEqual(r.status, 404, (path, r))
            self.assertEqual(self.whr_requests(mark), [])
            for path in paths[5:]:
                r = c.request('GET', path)
                self.assertIn(r.status, (400, 404), (path, r))
            r = c.request('GET', w.WEBHOOK + '?echo=greedy')
            self.assertEqual((r.status, r.body), (200, b'greedy'))
        self.assertNotIn('/healthz', {r.get('path') for r in
                                      self.whr_requests(mark)})
        # whr itself still answers on its own address
        self.assertEqual(w.get(self.srv.port, '/readyz').status, 200)

    def test_path_and_query_passed_as_sent(self):
        mark = self.srv.mark()
        body = w.delivery(id='nginx-path')
        path = '/API/webhooks/Incoming/custom/Tenant%32/?a=%2F&b=c+d'
        host = 'Localhost:%d' % self.nginx.port
        with self.connect() as c:
            r = self.post(c, body, secret=SECRET2, path=path,
                          headers=[('Host', host)])
            self.assertEqual(r.status, 200, r)
        (req,) = self.whr_requests(mark)
        # the path as the client sent it: whr decodes the id itself
        self.assertEqual(req['path'], path.split('?')[0])
        self.assertEqual(req['receiver'], 'Tenant2')
        d = self.assert_stored_exactly('nginx-path', body, 'tenant2')
        # the Host header as sent, port included
        self.assertEqual({k.lower(): v for k, v in d['headers']}['host'],
                         host)


if __name__ == '__main__':
    w.main()
