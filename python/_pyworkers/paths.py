"""Where the worker runtime lives: the one definition of RUNTIME_DIR.

Used to leave the runtime's own frames out of tracebacks, and its own allocations out of memory snapshots.
"""
import os

RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
