"""Step kinds: each builds the command of a step and interprets how it ended."""
