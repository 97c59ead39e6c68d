"""Reinforcement learning on RLlib (Hands-On ML, chapter 16): the ``rl:`` section of a job spec."""
