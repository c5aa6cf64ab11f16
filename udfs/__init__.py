"""Engine adapters. Each sub-package converts its engine's batches to Arrow and calls byom's core.

Engines are imported only inside their own adapter, so `import byom` never pulls in an engine.
"""
