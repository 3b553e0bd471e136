"""Studies, planning, the Ray Tune driver, the results store and the CLI.

Only ``isosweep.orchestrator.driver`` imports Ray; everything else here works without it.
"""
