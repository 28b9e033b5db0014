"""One router per area: public, auth, and one per role."""
