"""The pyworkers worker runtime (standard library only).

Started by the Node.js host; not meant to be imported by user code.
"""
