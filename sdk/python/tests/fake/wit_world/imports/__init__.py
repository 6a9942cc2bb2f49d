"""Stand-ins for the generated host interfaces: in-memory state the tests set and read."""
