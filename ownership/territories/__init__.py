"""Territories and ownership rules: which team may own which customer (see rules.py)."""
