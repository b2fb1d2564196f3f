"""Switchboard routing engine."""
