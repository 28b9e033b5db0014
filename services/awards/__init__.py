"""Awards: award rules from the cycle config, the ceremony's winners, certificates (piagam, PDF)
with verification codes, and the results document (HTML and CSV)."""
