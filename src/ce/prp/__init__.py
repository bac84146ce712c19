"""PRP documents: parse, normalize, validate, write the status back (pure: no git, no processes)."""
