"""What happens after a client's check-in changes: the one place that decides about it.

The tap, the comment and the expiry of a check-in each end here (`review.decide`): the
detectors over the client's history, the tier of each flag (push now, or keep for the
brief), and the alert rows. `store/` only persists; `alliance/` only computes.
"""
