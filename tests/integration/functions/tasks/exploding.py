"""A module whose top-level code exits: importing it raises SystemExit."""

raise SystemExit(3)
