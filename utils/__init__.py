"""Shared helpers of TARTES-Emulator."""
__version__ = "0.1.0"
