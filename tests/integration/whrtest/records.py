"""The recorder's lines: what each handler call saw."""

import binascii
import re



_ESCAPE = re.compile(r'\\(x[0-9a-f]{2}|n|r|\\)')


def unescape(field):
    def one(m):
        s = m.group(1)
        if s == 'n':
            return '\n'
        if s == 'r':
            return '\r'
        if s == '\\':
            return '\\'
        return chr(int(s[1:], 16))
    return _ESCAPE.sub(one, field)


NONE = '(none)'


class Record:
    """One line of the recorder (see recorder.c for the format)."""

    FIELDS = ('handler', 'action', 'index', 'count', 'delivery', 'attempt',
              'receiver', 'course_id', 'email', 'users', 'p1', 'json40',
              'action_type', 'course_type', 'status_int', 'published',
              'received_at', 'json_len', 'json_hex', 'properties_hex')

    def __init__(self, raw, fields, paths):
        self.raw = raw
        self.fields = fields
        self.paths = paths

    @classmethod
    def parse(cls, line):
        text = line.decode('utf-8')
        parts = text.split('|')
        if parts[0] == 'destroy':
            return cls(text, {'handler': 'destroy', 'name': parts[1]}, [])
        if len(parts) < len(cls.FIELDS):
            raise AssertionError('short recorder line: %r' % text)
        fields = {k: unescape(v) for k, v in zip(cls.FIELDS, parts)}
        paths = []
        for p in parts[len(cls.FIELDS):]:
            kind, _, value = p.partition('=')
            paths.append((kind, unescape(value)))
        return cls(text, fields, paths)

    def __getattr__(self, name):
        try:
            return self.__dict__['fields'][name]
        except KeyError:
            raise AttributeError(name)

    @property
    def json(self):
        return binascii.unhexlify(self.fields['json_hex'])

    @property
    def properties(self):
        return binascii.unhexlify(self.fields['properties_hex'])

    def __repr__(self):
        return 'Record(%r)' % self.raw
