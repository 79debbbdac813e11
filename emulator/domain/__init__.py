"""The domain: pure rules of tokens, validation, challenges, journal and time; no Flask here."""
