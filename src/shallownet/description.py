"""Markdown tables for a run's description in the MLflow UI (the parent run of a sweep).

MLflow's UI renders a description's Markdown table as an HTML table without padding between
its cells: "leaky_relu" and "5 (5)" of two columns read "leaky_relu5 (5)". Each cell ends in
an em space, written as the entity ``&emsp;``: Markdown trims a cell's plain (and no-break)
spaces, and decodes entities only after that.
"""

GAP = "&emsp;"


def cell(value):
    """One cell: its pipes escaped, on one line, followed by the gap."""
    return str(value).replace("|", "\\|").replace("\n", " ") + GAP


def table(head, rows):
    """The Markdown lines of a table with header ``head`` and ``rows`` (lists of cells)."""
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
