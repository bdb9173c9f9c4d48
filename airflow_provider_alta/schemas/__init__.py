"""JSON Schemas the provider validates requests against (package data)."""
