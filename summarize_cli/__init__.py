"""Summarise articles with T5 and other seq2seq models."""

__version__ = "0.1.0"
