"""lambda-defer benchmarks: `make bench` (= `.venv/bin/python -m bench`) writes bench/results.json.

Never imported by the test suite; nothing here is a timed test. See bench/README.md.
"""
