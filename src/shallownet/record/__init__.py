"""The record: the only package that imports MLflow (``shallownet/pyfunc_model.py``, the model
MLflow loads from code, aside). The store (``store``: its URI and default place; ``schema``: a new
sqlite store made whole; ``tracking``: connecting, runs, metrics, files, the model, reading runs
back), who trains a configuration (``claims``), and what a finished run leaves (``contents``)."""
