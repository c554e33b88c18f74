"""StyleGAN2 networks (Keras 3, NHWC): mapping, synthesis, generator and discriminator; the
progressive-growing networks of configs b-d (growing.py) and the StyleGAN baseline of
config a (stylegan1.py)."""

from sg2tf.networks.discriminator import Discriminator, DiscriminatorBlock, DiscriminatorEpilogue
from sg2tf.networks.generator import Generator
from sg2tf.networks.growing import GrowingDiscriminator, GrowingGenerator
from sg2tf.networks.growing import GrowingSynthesisNetwork
from sg2tf.networks.mapping import MappingNetwork
from sg2tf.networks.stylegan1 import StyleGANDiscriminator, StyleGANGenerator
from sg2tf.networks.stylegan1 import StyleGANMapping, StyleGANSynthesisNetwork
from sg2tf.networks.synthesis import ARCHITECTURES, SynthesisBlock, SynthesisNetwork

__all__ = [
    'ARCHITECTURES', 'Discriminator', 'DiscriminatorBlock', 'DiscriminatorEpilogue', 'Generator',
    'GrowingDiscriminator', 'GrowingGenerator', 'GrowingSynthesisNetwork', 'MappingNetwork',
    'StyleGANDiscriminator', 'StyleGANGenerator', 'StyleGANMapping', 'StyleGANSynthesisNetwork',
    'SynthesisBlock', 'SynthesisNetwork',
]
