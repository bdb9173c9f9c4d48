"""Test helpers: the Alta emulator, a client to drive it, and pytest fixtures.

Imported only by tests and tools, never by the operators (it needs aiohttp).
"""
