"""The model: find it, load it on a backend, tokenize, and resolve its generation settings."""
