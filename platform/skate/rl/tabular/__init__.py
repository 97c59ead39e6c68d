"""Chapter 16's tabular core: Markov decision processes small enough to hold in a table, and the
algorithms that solve them (value iteration, Q-value iteration, TD learning, Q-learning).

They run through skate like any RL job (``rl.algorithm: q_learning``, ``rl.env: seed_mdp``), on a
path of their own (:mod:`skate.rl.tabular.runner`): no RLlib, no Ray, checkpoints of plain arrays.
"""
