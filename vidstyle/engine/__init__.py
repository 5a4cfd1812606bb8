"""Video engine: settings, plan (shots, chunks, anchors), job preparation, scheduler, workers, store, sidecar.

`coordinator.run_job` orders the stages; `jobs` prepares a job (probe, range, size, plan, key,
store); `scheduler` hands tasks (`tasks`) to workers (`worker`, run by `executors`) and writes
finished chunks in order; `sidecar` records the run. The engine knows the `FrameStylizer`
interface and `MethodSpec`, nothing of any method's internals.
"""
