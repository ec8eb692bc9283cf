"""Graded exercises: edit these files, then run ``monolith-ref grade``.

Each function or method body raises ``NotImplementedError`` until you write it. The specs are
in the docstrings; the graders live in ``tests/exercises/``. Reference answers are in
``solutions/`` (try first!).
"""
