"""Stanch's pure domain: no I/O, no wall clock, no globals.

Every function that needs the time takes it as an argument (seconds since the epoch, as a float),
so the same objects run live, in a replay at 1000x speed, and in tests.
"""
