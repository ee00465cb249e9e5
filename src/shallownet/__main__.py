"""``python -m shallownet``: ``shallownet-train`` (how shallownet-reproduce re-runs a run)."""

from shallownet.sweep.cli import main

if __name__ == "__main__":
    main()
