"""Gatys optimization: `settings` (options, presets), `schedule` (levels, size and memory checks),
`objective` (the loss of one level), `loop` (`GatysEngine`: model, style targets, optimizer steps),
`stylizer` (`GatysStylizer` and the registry's `build`).

Nothing is imported here: the registry reads `gatys.settings` without loading torch.
"""
