"""Inputs: find, fetch, decode, extract and detect the language of documents."""
