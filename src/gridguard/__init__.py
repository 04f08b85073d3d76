"""GridGuard: demand management and anti-backflow for C&I sites (需量管理与防逆流).

Layers, top to bottom; imports point down only (docs/architecture.md): ``cli`` > ``demo`` >
``edge`` | ``client`` | ``lab`` | ``sim`` > ``control`` > ``devices`` | ``mqtt`` > ``plant`` |
``store`` > ``site`` > ``strategy`` > ``protocol`` > ``vocab`` | ``clock`` | ``ports``.

Rulings: none owned here; each package lists the rulings it owns (defined in docs/rulings.md).
"""

__version__ = "0.1.0"
