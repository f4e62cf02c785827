"""Simulated blood-pressure cuffs on a real Bluetooth stack (Bumble)."""
