"""End-to-end benchmark suites (sampling, training iterations), their runner and report."""
