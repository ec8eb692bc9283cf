"""Reference solutions of the graded exercises (the same files as ``exercises/``, solved).

CI grades these, so every grader is known to be passable.
"""
