"""The control engine: per gateway meter, readings -> pure laws -> clamped setpoints.

``laws/`` turns strategies into bounds on grid power, ``dispatch/`` shares a correction over the
device classes, ``demand.py`` is the demand meter, ``engine.py`` runs the cycle on a clock.

Rulings:
    D18  dynamic demand                 demand.py
"""
