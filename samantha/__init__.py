"""Samantha: an agentic SRE for disconnected edge AI appliances."""

__version__ = "0.1.0"
