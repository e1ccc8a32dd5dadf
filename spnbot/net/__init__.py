"""Outgoing HTTP rules shared by every client of an outside service."""
