"""`python -m tamma_trio ...`: the same CLI as the `tamma-trio` console script."""

from tamma_trio.cli import run

run()
