"""LoopLab: a modular deep reinforcement learning lab."""
__version__ = "0.1.0"
