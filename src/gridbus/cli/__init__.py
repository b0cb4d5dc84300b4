"""The ``gridbus`` command line: one module per group of commands, built into one parser by ``main.py``."""
