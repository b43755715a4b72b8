#!/usr/bin/env python3
"""Write the first ```c block of a Markdown file to a C file, so that the
documentation's example programs are built and run by the test suite.

Usage: extract-example.py DOC.md OUT.c
"""
import sys


def main():
    doc, out = sys.argv[1:3]
    lines = open(doc, encoding='utf-8').read().split('\n')
    try:
        start = lines.index('```c') + 1
        end = lines.index('```', start)
    except ValueError:
        sys.exit(f'{doc}: no ```c block')
    with open(out, 'w', encoding='utf-8') as f:
        f.write(f'/* Extracted from {doc}; do not edit. */\n')
        f.write('\n'.join(lines[start:end]) + '\n')


if __name__ == '__main__':
    main()
