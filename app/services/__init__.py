"""Use cases. Each takes the session first, flushes, and leaves the commit to its caller."""
