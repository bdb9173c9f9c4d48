"""The operator's extra links."""
