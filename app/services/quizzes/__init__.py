"""Quizzes on case sets (issue 9), one module per job: marking, attempts, feedback, reviews,
authoring, statistics, stacks, unknowns; callers import the submodule they need."""
