"""The four services (registration, verification, scoring, awards) and their small common package."""
