"""The run: chunk to the input limit, batch by length, map-reduce, cache; one builder makes it."""
