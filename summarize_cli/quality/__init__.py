"""Scoring summaries: ROUGE and the baselines beside the model."""
