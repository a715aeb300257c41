//! End-to-end test support: fixtures for the real berth binary.
