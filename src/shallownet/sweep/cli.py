"""``shallownet-train``'s command line: refuse bad input before Hydra runs, then one run or a
sweep (Hydra's, with ``task.run_job`` as its task function), and exit with its code.

    shallownet-train activation=relu              # python -m shallownet works too
    shallownet-train -m experiment=tutorial000_activations

The process's stop signals are taken here, by the entry point, not by importing a module: a
library or test that imports ``shallownet.train`` keeps its own handlers.
"""

import sys

from ..stop import STOP


def main():
    """Console entry point: exits 0 finished, 1 diverged or failed, 2 bad config or data, 3
    tracking store unusable, 128 + the signal's number when stopped (130 Ctrl-C)."""
    # Before the heavy imports: a Ctrl-C while they load is an interrupt too, taken once they
    # are loaded and the command line is checked (below). Held first, so none slips between.
    STOP.hold()
    STOP.install()

    from .. import console
    from ..job import RunError
    from ..record import remote
    from . import pool, preflight, task
    from . import session as sweep

    if is_single_run(sys.argv[1:]):
        remote.start_early()
    elif is_sweep(sys.argv[1:]):
        pool.start()  # its workers import while this process composes the sweep
    console.configure()
    code = 0
    # force is a schema key now; `+force=true` (what earlier versions asked for) means it too
    sys.argv[1:] = [a[1:] if a.startswith("+force=") else a for a in sys.argv[1:]]
    try:
        # Still held: a Ctrl-C inside Hydra's compose leaves OmegaConf half-updated and surfaces
        # as an unrelated AttributeError. Preflight records nothing, so the stop can wait the
        # second it takes.
        preflight.check(sys.argv[1:])
        if STOP.requested:  # a Ctrl-C during the imports or the preflight
            raise KeyboardInterrupt
        # Held through Hydra's own compose too: the task function (task.run_job) or the
        # sweep's first callback (sweep.SweepCallback.on_multirun_start) releases it.
        task.hydra_main()
        code = sweep.exit_code()
    except RunError as err:
        console.say(err.message)
        code = err.code
    except sweep.SweepAbort as err:
        console.say(err.message)
        code = err.code
    except KeyboardInterrupt:
        console.say("interrupted")
        code = STOP.exit_code
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    finally:
        remote.discard()
        code = sweep.close_open_sweep(code)
        pool.close()
    sys.exit(code)


def is_sweep(argv):
    return any(a in ("-m", "--multirun") for a in argv)


def is_single_run(argv):
    """A command line of overrides only: one run (every Hydra flag, -m among them, starts with -)."""
    return not any(a.startswith("-") for a in argv)
