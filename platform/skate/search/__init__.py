"""Hyperparameter search with Ray Tune (`skate tune`): the ``search:`` section, trials, the experiment directory."""
