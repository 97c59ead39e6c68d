"""Launching jobs on a Ray cluster: submit, follow and stop them; cluster definitions that are checked."""
