"""Pure shared vocabulary: errors, events, names, the path matcher.

No git, no processes, no clock: time is passed in.
"""
