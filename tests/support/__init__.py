"""What the tests share: builders of test data, servers, package indexes, Blender helpers, drivers.

No test module imports another test module; what two of them need lives here. ``bench/`` scripts
may use these too (and nothing else of ``tests/``).
"""
