"""The pure domain of entitlements: aggregates, their events, the rules, the commands.

Nothing here imports Flask, SQL drivers, marshmallow or template engines, and nothing reads the
wall clock except :class:`domain.clock.SystemClock`, which the composition root injects.
"""
