"""Past one machine: the same run on Ray."""
