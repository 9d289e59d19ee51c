"""Shared pieces of the official/ entry points: distribution strategies, flags."""
