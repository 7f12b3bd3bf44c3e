"""Calls in progress: cap timers, and ending a call for harassment."""
