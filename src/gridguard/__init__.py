"""GridGuard: demand management and anti-backflow for C&I sites (需量管理与防逆流)."""

__version__ = "0.1.0"
