"""Sharing one meter's correction over its device classes, down to one setpoint per device.

``merit.py`` plans per class in merit order, ``split.py`` turns a class plan into clamped
device setpoints, ``piles.py`` throttles charging piles, ``owed.py`` remembers releases,
``rise.py`` predicts the sun's climb still to come.

Rulings:
    D20  control law                    merit.py
"""
