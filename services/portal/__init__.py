"""The portal: the web door for people (units, agency admins, verifiers, jurors, operators and the
public). Every act is the acting person's NATS command, sent with the actor taken from the
session; the portal keeps only its own accounts and sessions."""
