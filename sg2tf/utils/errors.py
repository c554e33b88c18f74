"""Error types of bad input that several layers raise, defined below all of them (no
TensorFlow, no sg2tf imports) so that raising one never needs an upward import."""


class NetworkLoadError(ValueError):
  """--network is unusable; the message says why and what to do."""
