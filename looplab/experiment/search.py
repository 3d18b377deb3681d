"""Mode 'search' (not yet available)."""

from looplab.errors import LoopLabError


def run_search(*args, **kwargs):
    raise LoopLabError("mode 'search' is not available in this version of LoopLab; use dev or train")
