"""Data validation: expectation suites built from typed rules, run with Great Expectations."""
