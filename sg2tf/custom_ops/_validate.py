"""Argument checks shared by the ops: bad input is an InvalidArgumentError that says what
was wrong and what to pass instead, raised before any TF kernel runs."""

import tensorflow as tf

_FLOAT_DTYPES = (tf.float32, tf.float16, tf.bfloat16)


def invalid(message: str) -> tf.errors.InvalidArgumentError:
  return tf.errors.InvalidArgumentError(None, None, message)


def float_tensor(x, op: str, name: str) -> tf.Tensor:
  x = tf.convert_to_tensor(x)
  if x.dtype not in _FLOAT_DTYPES:
    raise invalid(f'{op}: {name} must be float32, float16 or bfloat16, got {x.dtype.name}; '
                  f'cast it first (e.g. tf.cast({name}, tf.float32)).')
  return x


def int_pair(value, op: str, name: str, minimum: int):
  """An int or [x, y] -> (x, y), each >= minimum."""
  if isinstance(value, (list, tuple)):
    if len(value) != 2:
      raise invalid(f'{op}: {name} must be an int or [x, y], got {value!r}')
    vx, vy = value
  else:
    vx = vy = value
  try:
    vx, vy = int(vx), int(vy)
  except (TypeError, ValueError):
    raise invalid(f'{op}: {name} must be integers, got {value!r}') from None
  if vx < minimum or vy < minimum:
    raise invalid(f'{op}: {name} must be >= {minimum}, got {value!r}')
  return vx, vy


def padding4(padding, op: str):
  """int, [x, y] or [x0, x1, y0, y1] -> (x0, x1, y0, y1); negative values crop."""
  if isinstance(padding, (list, tuple)):
    vals = list(padding)
  else:
    vals = [padding]
  try:
    vals = [int(v) for v in vals]
  except (TypeError, ValueError):
    raise invalid(f'{op}: padding must be integers, got {padding!r}') from None
  if len(vals) == 1:
    return vals * 4
  if len(vals) == 2:
    return [vals[0], vals[0], vals[1], vals[1]]
  if len(vals) == 4:
    return vals
  raise invalid(f'{op}: padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding!r}')
