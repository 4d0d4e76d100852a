"""Load benchmarking: a ``load:`` section turns each grid point into a sweep of load levels.

``options`` is the config's model, ``schedule`` the arrival times (a pure function of a seed), ``plan`` the
level cells and their items, ``driver`` sends a level's items open-loop (on schedule) or closed-loop (a fixed
number in flight), ``metrics`` the level's figures and the capacity search; report/load.py shows them.
"""
