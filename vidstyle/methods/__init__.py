"""Stylization methods. Each implements `FrameStylizer`; none touches Ray or PyAV."""
