"""Strategies as the EMS keeps them, and the pure rules that apply commands to them.

Pure (pydantic and the standard library): ``model.py`` is the frozen stored strategy and its
month logic, ``rules.py`` applies create, update, delete and update_all to the set.

Rulings:
    D7   strategy identity              rules.py
    D8   create                         rules.py
    D9   update                         rules.py
    D10  delete                         rules.py
    D11  update_all                     rules.py
    D14  validation, month's condition  model.py
"""
