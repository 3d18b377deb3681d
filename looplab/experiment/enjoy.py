"""Mode 'enjoy' (not yet available)."""

from looplab.errors import LoopLabError


def run_enjoy(*args, **kwargs):
    raise LoopLabError("mode 'enjoy' is not available in this version of LoopLab; use dev or train")
