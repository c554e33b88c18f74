"""Fused custom ops for StyleGAN2: `upfirdn2d` and `bias_act` (NHWC), each with a pure-TF
reference and a compiled C++/CUDA kernel chosen by `impl='auto'|'custom'|'ref'`."""

from sg2tf.custom_ops._loader import CustomOpUnavailableError, resolve_impl
from sg2tf.custom_ops.bias_act import activation_funcs, bias_act
from sg2tf.custom_ops.conv2d_resample import conv2d_resample
from sg2tf.custom_ops.upfirdn2d import (downsample2d, filter2d, setup_filter, upfirdn2d,
                                        upsample2d)

__all__ = [
    'CustomOpUnavailableError', 'activation_funcs', 'bias_act', 'conv2d_resample',
    'downsample2d', 'filter2d', 'resolve_impl', 'setup_filter', 'upfirdn2d', 'upsample2d',
]
