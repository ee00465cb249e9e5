"""A grid sweep's jobs that differ only in ``seed``, merged into jobs that train several
seeds stacked (``seeds=[...]``, shallownet.fit.fit_stacked): one Hydra job, one data load,
one stacked computation, still one MLflow run per seed. The study files turn it on with
``stack_seeds``; 1 keeps a job per seed."""


def stack_seeds(jobs, per_job):
    """``jobs`` ([[override]], the grid's order) with the jobs that differ only in their
    ``seed=`` override merged, at most ``per_job`` seeds each and split as evenly as that
    allows (6 seeds, 4 per job: 3 + 3); each merged job has ``seeds=[a,b,...]`` where its
    ``seed=`` was. Jobs without a seed override are left as they are."""
    if per_job <= 1:
        return jobs
    groups = {}  # the overrides with the seed's place blanked -> (place, seeds)
    for job in jobs:
        place = next((i for i, o in enumerate(job) if o.startswith("seed=")), None)
        key = tuple(job) if place is None else (*job[:place], None, *job[place + 1 :])
        groups.setdefault(key, (place, []))[1].append(None if place is None else job[place][5:])
    out = []
    for key, (place, seeds) in groups.items():
        if place is None:
            out.append(list(key))
            continue
        for chunk in _even_chunks(seeds, per_job):
            out.append([*key[:place], f"seeds=[{','.join(chunk)}]", *key[place + 1 :]])
    return out


def _even_chunks(items, most):
    """``items`` in consecutive chunks of at most ``most``, as even as possible."""
    n = -(-len(items) // most)
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (i < extra)
        chunks.append(items[start:end])
        start = end
    return chunks


def runs_in(job):
    """How many runs a job's overrides train: its ``seeds=[...]``'s length, else 1."""
    given = next((o for o in job if o.startswith("seeds=")), None)
    return 1 if given is None else given.count(",") + 1
