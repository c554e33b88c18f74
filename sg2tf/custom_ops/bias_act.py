"""Fused bias + activation + gain + clamp: `bias_act`.

One public function, its pure-TF reference beside it, and the compiled kernel behind it.
The activation table below is the single source of truth for both: the kernel receives
the table index (`ActSpec.index`, mirrored by `enum class Act` in
cc/kernels/bias_act_kernel.h) and the default alpha/gain come from here.

Gradients of the compiled op are themselves compiled ops (grad=1 for the first
derivative, grad=2 for the second), so R1 and path-length regularisation can
differentiate through them. Third derivatives are not supported by impl='custom'.
"""

import dataclasses
import math
from typing import Callable, Optional

import tensorflow as tf

from sg2tf.custom_ops import _device
from sg2tf.custom_ops import _loader
from sg2tf.custom_ops import _validate
from sg2tf.custom_ops import policy


@dataclasses.dataclass(frozen=True)
class ActSpec:
  index: int            # Must match enum class Act in cc/kernels/bias_act_kernel.h.
  ref: Callable         # Pure-TF activation (before gain and clamp): ref(x, alpha).
  def_alpha: float
  def_gain: float
  grad_ref: str         # What the kernel's derivative reads: 'x' (input+bias), 'y' (output) or ''.
  has_2nd_grad: bool    # Nonzero second derivative: the grad op needs grad=2.


activation_funcs = {
    'linear': ActSpec(0, lambda x, a: x, 0.0, 1.0, '', False),
    'relu': ActSpec(1, lambda x, a: tf.nn.relu(x), 0.0, math.sqrt(2), 'y', False),
    'lrelu': ActSpec(2, lambda x, a: tf.nn.leaky_relu(x, alpha=a), 0.2, math.sqrt(2), 'y', False),
    'tanh': ActSpec(3, lambda x, a: tf.math.tanh(x), 0.0, 1.0, 'y', True),
    'sigmoid': ActSpec(4, lambda x, a: tf.math.sigmoid(x), 0.0, 1.0, 'y', True),
    # elu: alpha is the negative saturation value (1 = the usual ELU).
    'elu': ActSpec(5, lambda x, a: tf.where(x >= 0, x, a * (tf.exp(tf.minimum(x, 0.0)) - 1)),
                   1.0, 1.0, 'y', True),
    'selu': ActSpec(6, lambda x, a: tf.nn.selu(x), 0.0, 1.0, 'y', True),
    'softplus': ActSpec(7, lambda x, a: tf.nn.softplus(x), 0.0, 1.0, 'y', True),
    'swish': ActSpec(8, lambda x, a: x * tf.math.sigmoid(x), 0.0, math.sqrt(2), 'x', True),
}
_BY_INDEX = {s.index: s for s in activation_funcs.values()}


def bias_act(x, b=None, axis=-1, act='linear', alpha=None, gain=None, clamp=None, impl='auto'):
  """Adds a bias, applies an activation, scales by a gain and clamps, in one pass.

  `y = clamp(act(x + b, alpha) * gain, -clamp, clamp)`, with the bias broadcast along
  `axis`.

  Args:
    x: float tensor of any rank (float32, float16 or bfloat16).
    b: optional 1-D bias with `x.shape[axis]` elements (same dtype as x).
    axis: the axis of x that b runs along (default: last, channels in NHWC).
    act: one of `activation_funcs`: linear, relu, lrelu, tanh, sigmoid, elu, selu,
      softplus, swish.
    alpha: activation parameter (lrelu slope, default 0.2; elu saturation, default 1).
    gain: scale after the activation (default: the table's, NVIDIA's: sqrt(2) for relu,
      lrelu and swish, 1 for the others).
    clamp: if not None, clamp the output to [-clamp, clamp] (>= 0).
    impl: 'custom', 'ref', or 'auto' (default): the policy's choice (policy.py; compiled
      op if it loads, else reference).
  Returns:
    A tensor with the shape and dtype of x.
  """
  x = _validate.float_tensor(x, 'bias_act', 'x')
  spec = activation_funcs.get(act)
  if spec is None:
    raise ValueError(f'bias_act: unknown act={act!r}; choose one of {sorted(activation_funcs)}')
  rank = x.shape.rank
  if rank is None:
    raise ValueError('bias_act: x must have a known rank')
  if not -rank <= axis < max(rank, 1):
    raise _validate.invalid(
        f'bias_act: axis={axis} is out of range for x of rank {rank}')
  axis = axis % rank if rank else 0
  if b is not None:
    b = tf.convert_to_tensor(b)
    if not b.dtype.is_floating:
      raise _validate.invalid(f'bias_act: b must be a float tensor, got {b.dtype.name}')
    b = tf.cast(b, x.dtype)
    if b.shape.rank != 1:
      raise _validate.invalid(f'bias_act: b must be 1-D, got shape {b.shape}')
    if b.shape[0] is not None and x.shape[axis] is not None and b.shape[0] != x.shape[axis]:
      raise _validate.invalid(
          f'bias_act: b has {b.shape[0]} elements but x.shape[{axis}] = {x.shape[axis]}')
  alpha = float(spec.def_alpha if alpha is None else alpha)
  gain = float(spec.def_gain if gain is None else gain)
  if clamp is not None and not float(clamp) >= 0:
    raise ValueError(f'bias_act: clamp must be >= 0 or None, got {clamp}')
  clamp = -1.0 if clamp is None else float(clamp)
  if policy.resolve_impl(impl, 'bias_act') == 'custom':
    return _bias_act_custom(x, b, axis, spec, alpha, gain, clamp)
  return _bias_act_ref(x, b, axis, spec, alpha, gain, clamp)


def _bias_act_ref(x, b, axis, spec, alpha, gain, clamp):
  """Plain TF ops; float16/bfloat16 are computed in float32 like the kernel does."""
  dtype = x.dtype
  if dtype != tf.float32:
    x = tf.cast(x, tf.float32)
  if b is not None:
    shape = [-1 if i == axis else 1 for i in range(x.shape.rank)]
    x = x + tf.reshape(tf.cast(b, x.dtype), shape)
  x = spec.ref(x, alpha)
  if gain != 1:
    x = x * gain
  if clamp >= 0:
    x = tf.clip_by_value(x, -clamp, clamp)
  return tf.cast(x, dtype)


def _empty(dtype):
  return tf.zeros([0], dtype=dtype)


def _call(x, b, xref, yref, dy, spec, grad, axis, alpha, gain, clamp):
  lib = _loader.get_library()
  return lib.sg2tf_bias_act(x, b, xref, yref, dy, act=spec.index, grad=grad, axis=axis,
                            alpha=alpha, gain=gain, clamp=clamp)


def _bias_act_custom(x, b, axis, spec, alpha, gain, clamp):
  b = _empty(x.dtype) if b is None else b
  e = _empty(x.dtype)
  return _loader.apply_fault('bias_act', _call(x, b, e, e, e, spec, 0, axis, alpha, gain, clamp))


def _reduce_to_bias(dx, axis):
  rank = dx.shape.rank
  if dx.dtype == tf.float32 and axis == rank - 1 and rank >= 2:
    # BiasAddGrad is TF's fused channel sum: ~5x faster than reduce_sum over N, H, W.
    return tf.raw_ops.BiasAddGrad(out_backprop=dx, data_format='NHWC')
  axes = [i for i in range(rank) if i != axis]
  if dx.dtype == tf.float32:
    return tf.reduce_sum(dx, axis=axes)
  # TF's CPU float16 sums accumulate in float16 (a channel of 16k ones sums to ~8k), so
  # sum in float32 and round once, as the reference's gradient (computed in float32) does.
  return tf.cast(tf.reduce_sum(tf.cast(dx, tf.float32), axis=axes), dx.dtype)


def _fused_bias_grad():
  """Whether gradients use Sg2tfBiasActReduce (CPU kernels only): when no GPU is visible.

  On CPU, TF's BiasAddGrad reads the whole gradient again (at ~10 GB/s on 2 cores); summing
  each block right after the kernel writes it, while it is still in cache, is nearly free.
  On GPUs BiasAddGrad is a tuned reduction, and the fused op has no GPU kernel.
  """
  return not _device.gpus_visible()


def _call_with_bias_grad(x, b, xref, yref, dy, spec, grad, axis, alpha, gain, clamp):
  """The op in derivative mode `grad` and the sum of its output along b's axis (or None)."""
  if b.shape[0] == 0:
    return _call(x, b, xref, yref, dy, spec, grad, axis, alpha, gain, clamp), None
  if _fused_bias_grad():
    lib = _loader.get_library()
    return tuple(lib.sg2tf_bias_act_reduce(x, b, xref, yref, dy, act=spec.index, grad=grad,
                                           axis=axis, alpha=alpha, gain=gain, clamp=clamp))
  out = _call(x, b, xref, yref, dy, spec, grad, axis, alpha, gain, clamp)
  return out, _reduce_to_bias(out, axis)


def _grad(op, grad_out):
  """Gradient of every grad mode of the op, expressed with the op itself."""
  x, b, xref, yref, dy = op.inputs
  spec = _BY_INDEX[op.get_attr('act')]
  mode = op.get_attr('grad')
  axis = op.get_attr('axis')
  alpha, gain, clamp = op.get_attr('alpha'), op.get_attr('gain'), op.get_attr('clamp')
  e = _empty(x.dtype)
  if mode == 0:
    # The first-derivative op reads x (+b) or y; x is also kept when a second derivative
    # exists, because the gradient of the grad op is taken with respect to x.
    xr = x if (spec.grad_ref == 'x' or spec.has_2nd_grad) else e
    yr = op.outputs[0] if (spec.grad_ref == 'y' or clamp >= 0) else e
    dx, db = _call_with_bias_grad(grad_out, b, xr, yr, e, spec, 1, axis, alpha, gain, clamp)
    return dx, db, None, None, None
  if mode == 1:
    # out = dy * act'(x + b); x stands for dy here.
    d_dy = _call(grad_out, b, xref, yref, e, spec, 1, axis, alpha, gain, clamp)
    d_xref, d_b = None, None
    if spec.has_2nd_grad:
      d_xref, d_b = _call_with_bias_grad(grad_out, b, xref, yref, x, spec, 2, axis, alpha, gain,
                                         clamp)
    # yref is a cached function of xref: its influence is already inside d_xref.
    return d_dy, d_b, d_xref, None, None
  raise NotImplementedError(
      'bias_act(impl="custom") supports first and second derivatives only; '
      'use impl="ref" for third-order derivatives.')


@tf.RegisterGradient('Sg2tfBiasAct')
def _bias_act_grad(op, grad_out):
  return _grad(op, grad_out)


@tf.RegisterGradient('Sg2tfBiasActReduce')
def _bias_act_reduce_grad(op, grad_out, grad_db):
  """db = the sum of out along all axes but `axis`: its gradient is broadcast onto out's."""
  if grad_db is not None:
    axis, rank = op.get_attr('axis'), op.outputs[0].shape.rank
    shape = [-1 if i == axis else 1 for i in range(rank)] if rank else []
    spread = tf.reshape(grad_db, shape)
    grad_out = spread + (tf.zeros_like(op.outputs[0]) if grad_out is None else grad_out)
  elif grad_out is None:
    return [None] * 5
  return _grad(op, grad_out)
