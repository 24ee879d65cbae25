"""Agent tests without a broker: Faust's test_context, fake deps (tests/conftest.py)."""
