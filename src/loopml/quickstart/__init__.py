"""The quickstart (being rewritten)."""
