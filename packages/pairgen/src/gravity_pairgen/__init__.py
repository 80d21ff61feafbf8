"""gravity_pairgen."""
