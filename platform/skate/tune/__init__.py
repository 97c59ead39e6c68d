"""Hyperparameter search with Ray Tune: the ``search:`` section, trials, the experiment directory."""
