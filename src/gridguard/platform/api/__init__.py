"""The REST API (FastAPI): thin routes over the platform's services.

Rulings: none owned.
"""
