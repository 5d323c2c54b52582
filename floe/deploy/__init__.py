"""The deploy tool: phased apply with readiness waits, failure diagnosis, port-forwards and teardown.

``python -m floe.deploy --help`` lists the commands; ``make/deploy.mk`` wraps them. Exit codes: 0 success,
1 failure (a failing pod/job, a refused preflight, a kubectl error), 2 timeout (see :mod:`floe.deploy.outcome`).
"""
