"""Test vectors, signing, and delivery bodies as the ASP.NET sender
writes them."""

import hashlib
import hmac
import json
import os

from .environment import data_path


V0_SECRET = '123456789012345678901234567890123456789012345678'
V1_SECRET = '0123456789abcdef0123456789abcdef'
V0_SIGNATURE = ('sha256=DCDEB62502988CDEDE464AF6A97566D6'
                '1288C446CFC46F74F341E11173FF30A1')
V1_SIGNATURE = ('sha256=11BDD3E02E9853644DE5CAF0415E089C'
                '871445D509B31388F5A7E5CB705BA8B5')
V2_SIGNATURE = ('sha256=1F44ABC47772A0092ACC9CE4CE810210'
                '843578AF4FA97F7EE71E57044EB8582F')


def vector(name):
    """The exact bytes of tests/data/vectors/NAME.body.bin."""
    with open(data_path('vectors', name + '.body.bin'), 'rb') as f:
        return f.read()


def mac_hex(secret, body):
    """Uppercase hex HMAC-SHA256 of @body keyed with the UTF-8 @secret."""
    if isinstance(body, str):
        body = body.encode('utf-8')
    return hmac.new(secret.encode('utf-8'), body,
                    hashlib.sha256).hexdigest().upper()


def sign(secret, body):
    """The ms-signature header value the ASP.NET sender would send."""
    return 'sha256=' + mac_hex(secret, body)


def to_json_text(obj):
    """Indented as Newtonsoft.Json does it: 2 spaces, ': ', raw UTF-8."""
    return json.dumps(obj, indent=2, ensure_ascii=False)


RANDOM = object()


def delivery(id=RANDOM, attempt=1, notifications=None, properties=None,
             crlf=True):
    """A delivery body as the ASP.NET sender writes it: members Id,
    Attempt, Properties, Notifications in that order, indented with 2
    spaces, CRLF line ends (crlf=False: LF). The Id is 32 random hex
    digits unless given (the inbox drops a delivery whose Id it has
    seen); id=None leaves Id out."""
    obj = {}
    if id is RANDOM:
        id = os.urandom(16).hex()
    if id is not None:
        obj['Id'] = id
    obj['Attempt'] = attempt
    obj['Properties'] = properties if properties is not None else {}
    obj['Notifications'] = (notifications if notifications is not None
                            else [{'Action': 'a1'}])
    text = to_json_text(obj)
    if crlf:
        text = text.replace('\n', '\r\n')
    return text.encode('utf-8')


def notification_spans(body):
    """Byte spans (start, end) of the elements of the top-level
    "Notifications" array of a JSON @body, found by a small scanner that
    does not depend on the server's code."""
    i = body.index(b'"Notifications"')
    i = body.index(b'[', i) + 1
    spans = []
    depth = 0
    start = None
    in_string = False
    escape = False
    while i < len(body):
        c = body[i:i + 1]
        if in_string:
            if escape:
                escape = False
            elif c == b'\\':
                escape = True
            elif c == b'"':
                in_string = False
        elif c == b'"':
            in_string = True
        elif c in (b'{', b'['):
            if depth == 0:
                start = i
            depth += 1
        elif c in (b'}', b']'):
            if depth == 0:
                break   # the end of the Notifications array
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
        i += 1
    return spans


def secret(tag, length=40):
    """A distinct, recognisable secret of @length characters."""
    base = hashlib.sha256(tag.encode()).hexdigest()
    text = (tag + '-' + base * 4)
    return text[:length]
