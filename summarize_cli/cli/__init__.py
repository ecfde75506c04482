"""The commands: options, specs built from them, one call each, and the one error funnel."""
