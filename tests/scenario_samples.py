"""Scenario text the core and e2e scenario tests share."""

GOOD = """\
name: demo
description: a small run
duration: 30s
population:
  devices: {apns: 4, fcm: 2}
  users: 3
load:
  shape: spike
  users: 2
  rate_per_user: 3
  spike_users: 10
  spike_at: 10s
  spike_for: 5s
objectives:
  max_lost: 0
  min_delivered_ratio: 0.999
quick:
  duration: 20s
"""
