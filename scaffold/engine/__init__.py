"""The retrofit/check engine: discover files, prefilter, parse once, run, write atomically."""
