"""Environments an ``rl:`` section may name: gymnasium ids, and skate's own (the seed's Ms. Pac-Man and
its three-state MDP).

A name is checked before anything starts, so a typo is one line with the close matches, not an
env-runner actor's traceback.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

def _make_mspacman(env_config: dict[str, Any], render_mode: str | None = None) -> Any:
    from skate.rl.atari import make_mspacman  # imported when used: it needs ale-py

    return make_mspacman(env_config, render_mode=render_mode)


def _make_seed_mdp(env_config: dict[str, Any], render_mode: str | None = None) -> Any:
    from skate.rl.tabular.env import make_tabular_env

    return make_tabular_env("seed_mdp", env_config, render_mode=render_mode)


SKATE_ENVS: dict[str, Callable[..., Any]] = {"mspacman": _make_mspacman, "seed_mdp": _make_seed_mdp}
"""skate's environments: name -> factory taking the ``env_config`` dict (and, to watch it, a
gymnasium ``render_mode``). ``seed_mdp`` is the seed's three-state MDP (:mod:`skate.rl.tabular.mdp`)."""

_PREFIX = "skate-"


def check_env(env: str) -> None:
    """Raise ``ValueError`` naming ``env`` and its close matches when it is neither a skate
    environment nor a registered gymnasium id; ``ImportError`` (with the install command) when a
    gymnasium family needs a package that is missing."""
    if env in SKATE_ENVS:
        return
    import gymnasium

    if env.startswith("ALE/"):
        try:
            import ale_py

            gymnasium.register_envs(ale_py)
        except ImportError as error:
            raise ImportError(f"env '{env}' needs ale-py: pip install 'skate[atari]' (or pip install ale-py)") from error
    if env in gymnasium.registry:
        return
    known = list(SKATE_ENVS) + list(gymnasium.registry)
    close = difflib.get_close_matches(env, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ValueError(f"unknown environment '{env}'{hint}; use a gymnasium id such as CartPole-v1, "
                     f"or one of skate's: {', '.join(SKATE_ENVS)}")


def is_atari(env: str) -> bool:
    """Whether ``env`` is an Atari game of ale-py (``ALE/...``, or skate's ``mspacman``): its actions
    are always a ``Discrete`` set of joystick moves, known without starting the emulator."""
    return env.startswith("ALE/") or env == "mspacman"


def make_env(env: str, env_config: dict[str, Any], *, render_mode: str | None = None) -> Any:
    """One instance of ``env`` in this process (to check its spaces, or, with ``render_mode``, to
    watch it play)."""
    check_env(env)
    if env in SKATE_ENVS:
        return SKATE_ENVS[env](env_config, render_mode=render_mode)
    config = {**env_config, "render_mode": render_mode} if render_mode is not None else env_config
    if env.startswith("ALE/"):
        return _make_ale(env, config)
    import gymnasium
    from gymnasium import logger

    if env not in SEED_VERSIONS:
        return gymnasium.make(env, **config)
    # gymnasium warns that the seed's version "is out of date": it is chosen on purpose. Through its
    # own level: a warnings filter does not hold once a library has replaced warnings.filters.
    level, logger.min_level = logger.min_level, logger.ERROR
    try:
        return gymnasium.make(env, **config)
    finally:
        logger.min_level = level


SEED_VERSIONS = ("CartPole-v0",)
"""Older gymnasium ids the seed plays, which jobs that reproduce it name on purpose."""


def env_name(env: str) -> str:
    """The name RLlib builds ``env`` by: gymnasium ids as they are; skate environments registered
    with Ray Tune's registry (in this process; env runners look it up through Ray)."""
    check_env(env)
    from ray.tune.registry import register_env

    if env.startswith("ALE/"):  # env runners must register ale-py's ids before making one
        register_env(env, lambda config: _make_ale(env, config))
        return env
    if env not in SKATE_ENVS:
        return env
    register_env(_PREFIX + env, SKATE_ENVS[env])
    return _PREFIX + env


def _make_ale(env: str, config: dict[str, Any]) -> Any:
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    return gymnasium.make(env, **config)
