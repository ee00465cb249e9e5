"""Sweep reports (``shallownet-report``).

One module per job:

* ``runs``      the run table: runs frame -> one tidy row per child run; curve measures
                (epochs to threshold, censored; lr decays)
* ``stats``     per-level descriptions, censored epochs to threshold, paired comparisons
                with effects, CIs, Holm; seeds needed; ``evaluate_comparisons`` for callers
* ``factorial`` main effects and interactions (linear model, ANOVA), marginal means
* ``checks``    degenerate-study flags (identical arms, zero variance, saturation, ...)
* ``claims``    the tutorials' claims and their verdicts
* ``figures``   the figures
* ``order``     each factor's levels in the study's order (its experiment file's sweep)
* ``document``  the report's sections as data, rendered by ``templates/report.md.j2``
                (Jinja2) to Markdown and by markdown-it-py to HTML; the parent's description
* ``build``     ``build_report``: the pipeline
* ``cli``       the command line

All MLflow access goes through ``shallownet.record.tracking`` (section "reading runs for reports").
"""

from ..record.tracking import load_sweep_runs
from .build import Report, ReportError, build_report
from .cli import main

__all__ = ["main", "build_report", "load_sweep_runs", "Report", "ReportError"]
