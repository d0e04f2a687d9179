"""The demo: a sample shop API, a seeded traffic generator, and an in-process driver.

They let ``stanch demo`` run half an hour of realistic traffic against a real ASGI app on a
simulated clock in seconds, so the whole detect-to-resolve loop can be watched without a
deployment, and replayed identically from a seed.
"""
