"""What shallownet prints: one whole line per call, so the lines of a sweep's jobs sharing one
terminal never run into each other (print() writes the text and the newline separately)."""

import sys


def emit(line, stream=None):
    """Write ``line`` and its newline in one call, and flush."""
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()


def say(msg):
    """A message of shallownet's own, on stderr."""
    emit(f"shallownet: {msg}", sys.stderr)
