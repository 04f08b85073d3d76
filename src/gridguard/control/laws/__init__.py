"""Pure control laws: each turns a frozen measurement into a bound on one meter's grid power.

Rulings:
    D15  anti-backflow                  backflow.py
    D16  single-phase anti-backflow     phase.py
    D17  over-demand                    overdemand.py
    D19  priority and combination       combine.py
    D21  fail-safe                      failsafe.py
"""
