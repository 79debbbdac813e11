"""pytest plugin (fixtures only); being written."""
