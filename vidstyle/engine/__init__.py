"""Video engine: plan (shots, chunks, anchors), tasks run by workers, Ray actors, coordinator, work store.

The engine knows the `FrameStylizer` interface and nothing of any method's internals.
"""
