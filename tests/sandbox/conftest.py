"""Fixtures for the sandbox's own tests: `lambda_dirs` and `sandbox_factory` (lambda_sandbox.testing)."""
from lambda_sandbox.testing import lambda_dirs, sandbox_factory  # noqa: F401
