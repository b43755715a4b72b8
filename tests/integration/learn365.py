"""A stand-in for Learn365's webhook registrations API (issue 16), as
PROTOCOL.md ("Registration API") describes it: Microsoft's
WebHookRegistrations controller under /webhooks/registrations, HTTP Basic
auth, the checks of a POST or PUT in their order with the echo GET to the
URI last (through the real network stack), 201 with the stored
registration and Location, both forms of the 400 message, list, get, put
and delete. It can also send deliveries to a registration's URI signed
with its Secret, as Learn365 would.

HTTPS on 127.0.0.1 only, with a throwaway CA made by the openssl command
(toolstest.make_certificates). Python's standard library only.

    with RegistrationsAPI() as api:
        whr register list --api api.url --cacert api.cacert
        ... api.registrations, api.calls, api.deliver(reg_id) ...
"""

import base64
import http.client
import http.server
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whrtest as w  # noqa: E402
import toolstest as t  # noqa: E402

USER = 'whr-test-user'
KEY = 'learn365-api-key-for-the-tests-0123456789'
PATH = '/webhooks/registrations'

EVENTS = ('CourseEnrollment', 'CourseUnenrollment', 'CourseStarted',
          'CourseCompleted', 'CoursePublished', 'CourseUnpublished',
          'EnrollmentApprovalRequest', 'CourseCreated', 'CourseDeleted',
          'UserCreated', 'UserDeleted', '*')

DENIED = {'Message': 'Authorization has been denied for this request.'}


class Refused(Exception):
    """A check of a POST or PUT failed: 400 with this reason."""


def utf16_units(text):
    return len(text.encode('utf-16-le')) // 2


class RegistrationsAPI(t.Stoppable):
    """The API on https://127.0.0.1:PORT (see the module's doc).

    message_form: 'current' answers a failed check 3 to 6 with
    {"Message": "Could not register WebHook due to error: <reason>"},
    'v1.2.2' with {"Message": "<reason>"}.
    """

    def __init__(self, user=USER, key=KEY, message_form='current'):
        self.user = user
        self.key = key
        self.message_form = message_form
        self.registrations = {}     # Id -> the stored registration
        self.calls = []             # (method, path, status)
        self.echoes = []            # (uri, outcome) of each echo GET
        self.lock = threading.Lock()
        self.tmp = tempfile.TemporaryDirectory(prefix='whr-learn365-')
        t.make_certificates(self.tmp.name)
        self.cacert = os.path.join(self.tmp.name, 'ca.pem')
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.tmp.name, 'good.pem'),
                            os.path.join(self.tmp.name, 'good.key'))
        api = self

        class Handler(_Handler):
            owner = api

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = 'https://127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    # -- for the tests --

    def env(self, **extra):
        """The environment whr register needs to reach this API."""
        env = {'WHR_LEARN365_API': self.url, 'WHR_LEARN365_API_USER':
               self.user, 'WHR_LEARN365_API_KEY': self.key}
        env.update(extra)
        return env

    def add(self, uri, secret, filters=('*',), description='', paused=False,
            headers=None, properties=None):
        """Store a registration directly (no checks); returns it."""
        reg = {'Id': os.urandom(16).hex(), 'WebHookUri': uri,
               'Secret': secret, 'Description': description,
               'IsPaused': paused, 'Filters': list(filters),
               'Headers': dict(headers or {}),
               'Properties': dict(properties or {})}
        with self.lock:
            self.registrations[reg['Id']] = reg
        return dict(reg)

    def get(self, reg_id):
        with self.lock:
            reg = self.registrations.get(reg_id)
            return json.loads(json.dumps(reg)) if reg else None

    def deliver(self, reg_id, notifications=None, secret=None):
        """POST a delivery to the registration's URI signed with its
        Secret (or @secret), as the sender does; returns the status."""
        reg = self.get(reg_id)
        uri = urllib.parse.urlsplit(reg['WebHookUri'])
        assert uri.scheme == 'http', uri
        body = w.delivery(notifications=notifications or [
            {'Action': 'CourseEnrollment', 'Course': {'Id': 'c1'},
             'Users': [{'Id': 'u1'}]}], properties=reg['Properties'])
        path = uri.path + ('?' + uri.query if uri.query else '')
        r = w.post(uri.port, body, secret or reg['Secret'], path=path,
                   headers=list(reg['Headers'].items()),
                   host=uri.hostname)
        return r.status

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
        self.tmp.cleanup()

    # -- the checks of a POST or PUT (PROTOCOL.md, in this order) --

    def message(self, reason):
        if self.message_form == 'v1.2.2':
            return {'Message': reason}
        return {'Message': 'Could not register WebHook due to error: '
                + reason}

    def check(self, reg, put_id=None):
        """Checks 2 to 6 on @reg (a dict with WebHookUri); raises Refused
        or returns the registration to store."""
        if put_id is None:
            reg['Id'] = os.urandom(16).hex()
        if not reg.get('Secret'):
            reg['Secret'] = os.urandom(16).hex()
        filters = reg.get('Filters') or ['*']
        canonical = {e.lower(): e for e in EVENTS}
        bad = [f for f in filters if str(f).lower() not in canonical]
        if bad:
            raise Refused("The following filters are not valid: '%s'."
                          % ', '.join(bad))
        reg['Filters'] = [canonical[str(f).lower()] for f in filters]
        if not 32 <= utf16_units(reg['Secret']) <= 64:
            raise Refused('The WebHook secret key parameter must be '
                          'between 32 and 64 characters long.')
        uri = urllib.parse.urlsplit(reg['WebHookUri'])
        if uri.scheme.lower() not in ('http', 'https') or not uri.netloc:
            raise Refused("The WebHook URI must be absolute with a scheme "
                          "of either 'http' or 'https' but received '%s'."
                          % reg['WebHookUri'])
        self.echo(reg['WebHookUri'])
        reg.setdefault('Description', '')
        reg.setdefault('IsPaused', False)
        reg.setdefault('Headers', {})
        reg.setdefault('Properties', {})
        order = ('Id', 'WebHookUri', 'Secret', 'Description', 'IsPaused',
                 'Filters', 'Headers', 'Properties')
        return {k: reg[k] for k in order if k in reg} | \
            {k: v for k, v in reg.items() if k not in order}

    def echo(self, uri_text):
        """The verification GET, unless the URI has a noecho parameter."""
        uri = urllib.parse.urlsplit(uri_text)
        names = [urllib.parse.unquote_plus(p.split('=', 1)[0]).lower()
                 for p in uri.query.split('&') if p]
        if 'noecho' in names:
            return
        value = os.urandom(16).hex()
        conn_class = (http.client.HTTPSConnection if uri.scheme == 'https'
                      else http.client.HTTPConnection)
        try:
            conn = conn_class(uri.hostname, uri.port, timeout=w.slow(10))
            conn.request('GET', (uri.path or '/') + '?echo=' + value)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            self.echoes.append((uri_text, 'error'))
            raise Refused('WebHook verification failed. Please ensure that '
                          'the WebHook URI is valid and that the endpoint '
                          'is accessible. Error encountered: %s' % e)
        if not 200 <= resp.status < 300:
            self.echoes.append((uri_text, resp.status))
            raise Refused('WebHook verification failed. Please ensure that '
                          'the WebHook URI is valid and that the endpoint '
                          'is accessible. Error encountered: %d'
                          % resp.status)
        if body != value.encode():
            self.echoes.append((uri_text, 'wrong body'))
            raise Refused('The HTTP request echo query parameter was not '
                          'returned as plain text in the response. Please '
                          'return the echo parameter to verify that the '
                          'WebHook is working as expected.')
        self.echoes.append((uri_text, 'ok'))


class _Handler(http.server.BaseHTTPRequestHandler):
    owner = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def answer(self, status, obj=None, headers=()):
        body = b'' if obj is None else json.dumps(
            obj, separators=(',', ':')).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header('Content-Type',
                             'application/json; charset=utf-8')
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.owner.lock:
            self.owner.calls.append((self.command, self.path, status))

    def authorized(self):
        want = base64.b64encode(('%s:%s' % (self.owner.user, self.owner.key))
                                .encode()).decode()
        return self.headers.get('Authorization') == 'Basic ' + want

    def route(self):
        """None for the collection, the id for one registration, False
        for any other path."""
        m = re.fullmatch(re.escape(PATH) + r'(?:/([^/?]+))?/?',
                         urllib.parse.urlsplit(self.path).path,
                         re.IGNORECASE)
        if m is None:
            return False
        return m.group(1)

    def body(self):
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def handle_one(self):
        api = self.owner
        target = self.route()
        data = self.body()
        if target is False:
            return self.answer(404, {'Message': 'No HTTP resource was '
                                     'found that matches the request URI.'})
        if not self.authorized():
            return self.answer(401, DENIED,
                               [('WWW-Authenticate', 'Basic')])
        if self.command == 'GET' and target is None:
            with api.lock:
                regs = list(api.registrations.values())
            return self.answer(200, regs)
        if self.command == 'GET':
            reg = api.get(target)
            return self.answer(200, reg) if reg else self.answer(404)
        if self.command == 'DELETE' and target is not None:
            with api.lock:
                found = api.registrations.pop(target, None)
            return self.answer(200 if found else 404)
        if self.command not in ('POST', 'PUT') or \
                (self.command == 'POST') != (target is None):
            return self.answer(405, {'Message': 'The requested resource '
                                     'does not support http method '
                                     "'%s'." % self.command})
        if self.command == 'PUT' and api.get(target) is None:
            return self.answer(404)
        # check 1: a body with WebHookUri
        if not data:
            return self.answer(400)
        try:
            reg = json.loads(data)
        except ValueError:
            reg = None
        if not isinstance(reg, dict) or not reg.get('WebHookUri'):
            return self.answer(400, {
                'Message': 'The request is invalid.',
                'ModelState': {'registration.WebHookUri': [
                    'The WebHookUri field is required.']}})
        if self.command == 'PUT' and reg.get('Id') != target:
            return self.answer(400, {'Message': 'The request is invalid.',
                                     'ModelState': {'id': [
                                         'The Id does not match.']}})
        try:
            stored = api.check(reg, put_id=target)
        except Refused as e:
            return self.answer(400, api.message(str(e)))
        with api.lock:
            api.registrations[stored['Id']] = stored
        if self.command == 'PUT':
            return self.answer(200)
        return self.answer(201, stored, [
            ('Location', api.url + PATH + '/' + stored['Id'])])

    do_GET = do_POST = do_PUT = do_DELETE = handle_one
