"""What shallownet prints, through the ``shallownet`` logger: one whole line per write, so the
lines of a sweep's jobs sharing one terminal never run into each other (print() writes the
text and the newline separately; logging's StreamHandler writes them in one call).

    configure()                 # once, by the entry point (emit does it if nobody did)
    emit("a line")              # stdout
    emit("a line", sys.stderr)  # or the stream given
    say("a message")            # "shallownet: a message" on stderr
"""

import logging
import sys

LOGGER = logging.getLogger("shallownet")


class _Lines(logging.StreamHandler):
    """Each record in one write to the stream it names, looked up when it is written (the
    process's sys.stdout by default: a test's capture, a job's redirection)."""

    def __init__(self):
        super().__init__(sys.stdout)

    def emit(self, record):
        self.stream = getattr(record, "stream", None) or sys.stdout  # under the handler's lock
        super().emit(record)

    def handleError(self, record):
        raise  # a closed stdout (| head) fails the caller as a write would, not as a log line


def configure():
    """Give the ``shallownet`` logger its one handler, and keep its lines its own: they do not
    propagate to the root logger, which Hydra configures in each job. Hydra's job_logging=disabled
    (``disable_existing_loggers``) turns off every logger that exists when a job starts: turned
    back on here. Idempotent."""
    if not LOGGER.handlers:
        LOGGER.addHandler(_Lines())
        LOGGER.setLevel(logging.INFO)
        LOGGER.propagate = False
    LOGGER.disabled = False


def emit(line, stream=None):
    """Write ``line`` and its newline in one call to ``stream`` (stdout), and flush."""
    if LOGGER.disabled or not LOGGER.handlers:
        configure()
    LOGGER.info(line, extra={"stream": stream or sys.stdout})


def say(msg):
    """A message of shallownet's own, on stderr."""
    emit(f"shallownet: {msg}", sys.stderr)


def first_line(err):
    """The first line of an error's message that names what went wrong (SQLAlchemy puts its
    notes, "(raised as a result of Query-invoked autoflush; ...", before the cause)."""
    text = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    causes = [line for line in text if not line.startswith("(raised as a result of")]
    return (causes or text or [type(err).__name__])[0]
