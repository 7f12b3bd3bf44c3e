"""Recordings: from Asterisk's spool to storage, verified, kept as long as policy says."""
