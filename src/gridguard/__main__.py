"""`python -m gridguard` runs the same CLI as the `gridguard` command."""

from gridguard.cli import app

app(prog_name="gridguard")
