"""Stylization methods. Each implements `FrameStylizer` (base.py); none touches Ray or PyAV.

`registry.py` lists them; `MethodSpec` is what travels to a worker and is built into a stylizer there.
"""

from vidstyle.methods.base import FrameContext, FrameResult, FrameStylizer, Pull, StylizerInfo
from vidstyle.methods.registry import METHODS, MethodSpec, method_entry

__all__ = [
    "METHODS",
    "FrameContext",
    "FrameResult",
    "FrameStylizer",
    "MethodSpec",
    "Pull",
    "StylizerInfo",
    "method_entry",
]
