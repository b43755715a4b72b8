"""Placeholder until written."""
import sys
sys.exit(77)
