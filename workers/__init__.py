"""The worker fleet: dramatiq actors, their middleware and the broker set-up."""
