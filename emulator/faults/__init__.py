"""Fault profiles: YAML rules that make the emulator slow, down, flaky, wrong or broken on demand.

`profile` parses and checks a profile strictly, `engine` decides (purely) which rule fires,
`state` keeps the active profile and the rule counters in the shared store, `loader` finds
a profile by built-in name or file path."""

from .profile import ENDPOINTS, Profile, ProfileError, Rule, parse_profile

__all__ = ["ENDPOINTS", "Profile", "ProfileError", "Rule", "parse_profile"]
