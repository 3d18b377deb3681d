"""Mode 'resume' (not yet available)."""

from looplab.errors import LoopLabError


def run_resume(*args, **kwargs):
    raise LoopLabError("mode 'resume' is not available in this version of LoopLab; use dev or train")
