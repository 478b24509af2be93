"""Samplers, traces, dynamics and the command line of the singular learning theory workbench."""

__all__: list[str] = []
